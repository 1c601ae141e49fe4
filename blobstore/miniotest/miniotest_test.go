package miniotest

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fatalTB records the first Fatalf and stops the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFailsWithInstructions(t *testing.T) {
	t.Setenv("MINIO_BIN", "")
	t.Setenv("PATH", filepath.Join(runtime.GOROOT(), "bin"))
	t.Setenv("GOPATH", t.TempDir())
	tb := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { findBinary(tb) })
	wg.Wait()
	if !strings.Contains(tb.msg, "make deps") {
		t.Fatalf("message %q does not say to run make deps", tb.msg)
	}
}

func TestMinioBinFromEnv(t *testing.T) {
	t.Setenv("MINIO_BIN", filepath.Join(t.TempDir(), "nope"))
	tb := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { findBinary(tb) })
	wg.Wait()
	if !strings.Contains(tb.msg, "MINIO_BIN") {
		t.Fatalf("message %q does not name MINIO_BIN", tb.msg)
	}
}
