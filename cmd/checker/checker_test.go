package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// TestChecker is the short form of the checker: about a minute of load with
// one fault of each kind (worker, NATS node and API killed, a worker
// paused past its ack wait), then every check. `make check` runs the long
// form.
func TestChecker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster, MinIO and four turbolane processes; skipped with -short")
	}
	var out bytes.Buffer
	o := defaultOptions()
	o.Duration, o.Clients, o.FaultEvery = 50*time.Second, 3, 4*time.Second
	o.Out = io.MultiWriter(&out, testWriter{t})
	o.Dir = t.TempDir()
	o.Turbolane = os.Getenv("TURBOLANE_BIN") // default: build ./cmd/turbolane
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.ok() {
		t.Fatalf("checker found problems:\n%s", out.String())
	}
	if rep.Acked == 0 || rep.Lost != 0 || rep.Duplicated != 0 || rep.ReplayVerified != 2 {
		t.Fatalf("figures: %+v", rep)
	}
	if rep.MaxTakeoverWait > 60*time.Second {
		t.Fatalf("a job waited %s after its worker died (goal ≤ 60 s)", rep.MaxTakeoverWait)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
