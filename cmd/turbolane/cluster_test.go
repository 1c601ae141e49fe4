package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convilyn/turbolane/blobstore/miniotest"
)

// These tests run the scaled-out deployment of docs/operations.md: a real
// 3-node nats-server cluster as processes, MinIO, two API replicas and a
// worker per pool, every one a separate process on loopback. The longer
// fault-injection proof is cmd/checker.

// natsCluster starts three nats-server processes clustered on loopback with
// fsync before every ack, waits until JetStream is healthy on each, and
// returns the comma-separated client URLs.
func natsCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, "go", "bin", "nats-server")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("nats-server not in PATH or ~/go/bin (make deps)")
		}
	}
	dir := t.TempDir()
	var client, route, mon []int
	for range 3 {
		client, route, mon = append(client, freePort(t)), append(route, freePort(t)), append(mon, freePort(t))
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", route[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i := range 3 {
		conf := filepath.Join(dir, fmt.Sprintf("n%d.conf", i))
		text := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"+
			"jetstream { store_dir: %q, sync_interval: always }\n"+
			"cluster { name: test, listen: 127.0.0.1:%d, routes: [%s] }\n",
			i, client[i], mon[i], filepath.Join(dir, fmt.Sprintf("n%d", i)), route[i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nats-server: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	for i := range 3 {
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", mon[i])
		deadline := time.Now().Add(2 * time.Minute)
		for {
			res, err := http.Get(url)
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("nats node %d not healthy after 2 min", i)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return strings.Join(urls, ",")
}

// TestClusterReplicasAndPools runs two API replicas and a standard and a
// large worker against a 3-node NATS cluster and MinIO: a job created
// through one replica is read at once through the other, both replicas
// answer it identically, large inputs run on the large worker, results
// download from MinIO through either replica, and lists converge.
func TestClusterReplicasAndPools(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster, MinIO and four turbolane processes; skipped with -short")
	}
	natsURL := natsCluster(t)
	s3 := miniotest.Start(t)
	dir := t.TempDir()
	common := []string{"--nats-url", natsURL, "--s3-endpoint", s3.Endpoint, "--s3-bucket", "turbolane",
		"--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey}
	var bases []string
	for i := range 2 {
		port := freePort(t)
		startProc(t, fmt.Sprintf("api %d", i+1), append([]string{"api", "--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("api%d", i+1)), "--session-secret", "cluster-test-secret",
			"--large-file-bytes", "20000", "--rate-limit", "0"}, common...)...)
		bases = append(bases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	for _, b := range bases {
		waitReady(t, b)
	}
	standard := startProc(t, "standard worker", append([]string{"worker", "--pool", "standard",
		"--data-dir", filepath.Join(dir, "ws"), "--ack-wait", "5s"}, common...)...)
	large := startProc(t, "large worker", append([]string{"worker", "--pool", "large",
		"--data-dir", filepath.Join(dir, "wl"), "--ack-wait", "5s"}, common...)...)

	// The readiness probe reports 3 replicas in cluster mode (auto).
	c := newClient(t, bases[0], "")
	other := newClient(t, bases[1], "")
	other.http.Jar = c.http.Jar // the same user (session cookie) on the other replica

	small := testJPEG(t, 64, 64)
	big := noiseJPEG(t, 220)
	if len(big) < 20000 || len(small) >= 20000 {
		t.Fatalf("fixture sizes %d and %d do not straddle --large-file-bytes", len(small), len(big))
	}
	var ids []string
	for i, img := range [][]byte{small, big, small} {
		file := c.upload(fmt.Sprintf("f%d.jpg", i), img)
		// The file uploaded through replica 1 is usable through replica 2 at once.
		res := other.postJSON("/api/v1/jobs", map[string]any{"processor_type": "image_conversion",
			"params": map[string]any{"file_id": file, "output_format": "png"}})
		mustStatus(t, res, http.StatusAccepted, "")
		var j jobJSON
		res.json(t, &j)
		// Read your own write on the replica that did not create it.
		mustStatus(t, c.get("/api/v1/jobs/"+j.JobID), http.StatusOK, "")
		ids = append(ids, j.JobID)
	}
	for i, id := range ids {
		done := c.waitJob(id)
		if done.Status != "completed" {
			t.Fatalf("job %s: %+v", id, done)
		}
		// Both replicas answer the same.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var o jobJSON
			other.get("/api/v1/jobs/"+id).json(t, &o)
			if o.Status == done.Status && len(o.ResultFiles) == 1 && o.ResultFiles[0].FileID == done.ResultFiles[0].FileID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica 2 disagrees on %s: %+v vs %+v", id, o, done)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The result downloads from MinIO through the other replica.
		dl := other.download(done.ResultFiles[0].DownloadURL)
		if dl.Status != http.StatusOK || !bytes.HasPrefix(dl.Body, []byte("\x89PNG")) {
			t.Fatalf("download %s through replica 2: %d", id, dl.Status)
		}
		// Routed by size: the big input ran on the large worker.
		want := standard
		if i == 1 {
			want = large
		}
		if pid := startedBy(t, c, id); pid != want.cmd.Process.Pid {
			t.Fatalf("job %d ran on pid %d, want %s (pid %d)", i, pid, want.name, want.cmd.Process.Pid)
		}
	}
	// Lists are eventually consistent: each replica's view catches up.
	for _, cl := range []*client{c, other} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var list struct {
				Jobs []jobJSON `json:"jobs"`
			}
			res := cl.get("/api/v1/jobs")
			mustStatus(t, res, http.StatusOK, "")
			res.json(t, &list)
			n := 0
			for _, j := range list.Jobs {
				if slices.Contains(ids, j.JobID) && j.Status == "completed" {
					n++
				}
			}
			if n == len(ids) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s lists %d of %d completed jobs after 30 s", cl.base, n, len(ids))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// startedBy returns the pid of the worker that started the job's first run.
func startedBy(t *testing.T, c *client, id string) int {
	t.Helper()
	res := c.get("/api/v1/jobs/" + id + "/events")
	mustStatus(t, res, http.StatusOK, "")
	var h struct {
		Events []struct {
			Type string
			Data struct{ WorkerID string }
		}
	}
	res.json(t, &h)
	for _, e := range h.Events {
		if strings.HasSuffix(e.Type, ".started") {
			parts := strings.Split(e.Data.WorkerID, "-")
			if len(parts) >= 3 {
				pid, _ := strconv.Atoi(parts[len(parts)-2])
				return pid
			}
		}
	}
	t.Fatalf("job %s has no started event", id)
	return 0
}

// noiseJPEG makes a size×size JPEG of random pixels (it compresses badly,
// so it is large for its dimensions).
func noiseJPEG(t *testing.T, size int) []byte {
	t.Helper()
	dir := t.TempDir()
	v, out := filepath.Join(dir, "n.v"), filepath.Join(dir, "n.jpg")
	if b, err := exec.Command("vips", "gaussnoise", v, strconv.Itoa(size), strconv.Itoa(size)).CombinedOutput(); err != nil {
		t.Fatalf("vips gaussnoise: %v %s", err, b)
	}
	if b, err := exec.Command("vips", "copy", v, out+"[Q=95]").CombinedOutput(); err != nil {
		t.Fatalf("vips copy: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// syncBuffer is a log destination the test reads while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReadyzReportsBrokenStream damages JOB_EVENTS' files between two runs
// of `serve` and checks that /readyz answers 503 naming the problem and
// that the log says so, instead of serving from a log that lost events.
func TestReadyzReportsBrokenStream(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, msgs string)
		check  string // the failing readiness check
	}{
		{"block removed", func(t *testing.T, msgs string) {
			blks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
			if len(blks) == 0 {
				t.Fatal("no block files")
			}
			if err := os.Remove(blks[0]); err != nil {
				t.Fatal(err)
			}
		}, "nats"},
		{"stream emptied", func(t *testing.T, msgs string) {
			if err := os.RemoveAll(msgs); err != nil {
				t.Fatal(err)
			}
		}, "events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addr, cfg.DataDir, cfg.NATSListen, cfg.RateLimit, cfg.LogLevel = "127.0.0.1:0", t.TempDir(), "", 0, "warn"
			run := func(log *syncBuffer) *Main {
				m := NewMain(RoleServe, cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})))
				if err := m.Run(context.Background()); err != nil {
					_ = m.Close()
					t.Fatalf("start serve: %v\n%s", err, log)
				}
				return m
			}
			m := run(&syncBuffer{})
			c := newClient(t, m.URL, "")
			file := c.upload("a.jpg", testJPEG(t, 32, 32))
			for range 3 {
				c.waitJob(c.createJob("image_compression", map[string]any{"file_id": file}).JobID)
			}
			mustStatus(t, c.get("/readyz"), http.StatusOK, "")
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}

			msgs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "nats", "jetstream", "*", "streams", "JOB_EVENTS", "msgs"))
			if len(msgs) != 1 {
				all, _ := filepath.Glob(filepath.Join(cfg.DataDir, "*", "*"))
				t.Fatalf("JOB_EVENTS message directory not found under %s: %v", cfg.DataDir, all)
			}
			tc.damage(t, msgs[0])

			log := &syncBuffer{}
			m = run(log)
			t.Cleanup(func() { _ = m.Close() })
			c.base = m.URL
			res := c.get("/readyz")
			mustStatus(t, res, http.StatusServiceUnavailable, "not_ready")
			var ready struct{ Checks map[string]string }
			res.json(t, &ready)
			if !strings.Contains(ready.Checks[tc.check], "event stream corrupt") {
				t.Fatalf("/readyz check %s does not name the corruption: %s", tc.check, res.Body)
			}
			if !strings.Contains(log.String(), "readiness check failed") || !strings.Contains(log.String(), "event stream corrupt") {
				t.Fatalf("no clear log line; log:\n%s", log)
			}
			t.Logf("/readyz: %s", ready.Checks[tc.check])
		})
	}
}
