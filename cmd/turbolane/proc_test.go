package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as separate processes and kill them, to
// check the durability promises: a job acknowledged with 202 survives a
// crash of any process, a job whose worker dies is taken up again, a
// SIGTERM hands in-flight work back and exits 0, and no job completes twice.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func turbolaneBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "turbolane-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "turbolane")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a turbolane child process in its own process group.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan error
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(turbolaneBinary(t), args...)
	cmd.Env = append(os.Environ(), "TURBOLANE_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

// kill signals the process group and waits for the process to exit.
func (p *proc) kill(sig syscall.Signal) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(40 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.t.Fatalf("%s did not exit within 40 s of %s", p.name, sig)
		return nil
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 60 s", base)
}

// slowJPEG makes a noise JPEG big enough that converting it to WebP takes
// seconds, so a process can be killed while it runs.
func slowJPEG(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	v, out := filepath.Join(dir, "noise.v"), filepath.Join(dir, "noise.jpg")
	if b, err := exec.Command("vips", "gaussnoise", v, "6000", "5000").CombinedOutput(); err != nil {
		t.Fatalf("vips gaussnoise (install libvips-tools: make deps): %v %s", err, b)
	}
	if b, err := exec.Command("vips", "copy", v, out+"[Q=85]").CombinedOutput(); err != nil {
		t.Fatalf("vips copy: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitStatus polls until the job reaches status (or a terminal one).
func (c *client) waitStatus(id, status string, within time.Duration) jobJSON {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		res := c.get("/api/v1/jobs/" + id)
		var j jobJSON
		if res.Status == http.StatusOK {
			res.json(c.t, &j)
			if j.Status == status || j.Status == "completed" || j.Status == "failed" {
				return j
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s not %s after %s: %d %s", id, status, within, res.Status, res.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventTypes returns the job's history as event names, oldest first.
func (c *client) eventTypes(id string) []string {
	c.t.Helper()
	res := c.get("/api/v1/jobs/" + id + "/events")
	mustStatus(c.t, res, http.StatusOK, "")
	var h struct {
		Events []struct {
			Type string
			Data map[string]any
		}
	}
	res.json(c.t, &h)
	var out []string
	for _, e := range h.Events {
		name := strings.TrimPrefix(e.Type, "com.convilyn.turbolane.job.")
		if name == "started" && e.Data["takeover"] == true {
			name = "started(takeover)"
		}
		out = append(out, name)
	}
	return out
}

func count(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestWorkerKilledMidJobIsTakenOver runs the API and a separate worker
// process, SIGKILLs the worker while it converts, starts another worker and
// checks that the job completes exactly once, after a takeover.
func TestWorkerKilledMidJobIsTakenOver(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	img := slowJPEG(t)
	dir := t.TempDir()
	natsPort := freePort(t)
	cfg := DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.LogLevel, cfg.RateLimit = "127.0.0.1:0", dir, "warn", 0
	cfg.NATSListen = fmt.Sprintf("127.0.0.1:%d", natsPort)
	cfg.PlanLimits = "anonymous=1GiB"
	m := startMain(t, RoleAPI, cfg)

	workerArgs := []string{"worker", "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--data-dir", dir,
		"--ack-wait", "3s", "--standard-slots", "1"}
	a := startProc(t, "worker A", workerArgs...)

	c := newClient(t, m.URL, "")
	file := c.upload("noise.jpg", img)
	job := c.createJob("image_conversion", map[string]any{"file_id": file, "output_format": "webp", "quality": 90})
	if j := c.waitStatus(job.JobID, "processing", 60*time.Second); j.Status != "processing" {
		t.Fatalf("job finished before the worker could be killed (%s); the test image is too small for this machine", j.Status)
	}
	_ = a.kill(syscall.SIGKILL)
	killed := time.Now()

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startProc(t, "worker B", append(workerArgs, "--metrics-addr", metricsAddr)...)
	done := c.waitJob(job.JobID)
	waited := time.Since(killed)
	if done.Status != "completed" {
		t.Fatalf("after takeover: %+v", done)
	}
	// The run is counted just after its completed event is appended.
	want := `turbolane_worker_runs_total{outcome="completed",pool="standard",processor_type="image_conversion"} 1`
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("worker metrics: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if body = string(b); strings.Contains(body, want) {
			break
		}
	}
	if !strings.Contains(body, want) {
		t.Fatalf("worker B's /metrics does not count its completed run:\n%s", grepLines(body, "turbolane_worker"))
	}
	hist := c.eventTypes(job.JobID)
	t.Logf("worker killed; job completed %s later; history %v", waited.Round(time.Millisecond), hist)
	if count(hist, "completed") != 1 || count(hist, "started(takeover)") != 1 || count(hist, "failed") != 0 {
		t.Fatalf("want one start, one takeover and one completion: %v", hist)
	}
}

// TestServeSIGTERMHandsBackAndSIGKILLLosesNothing stops `serve` with SIGTERM
// in the middle of a job (exit 0, job handed back and finished after the
// restart), then SIGKILLs it right after a 202 (the job still completes).
func TestServeSIGTERMHandsBackAndSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	img := slowJPEG(t)
	dir := t.TempDir()
	serve := func(name string) (*proc, string) {
		port := freePort(t)
		p := startProc(t, name, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dir,
			"--nats-listen", "", "--ack-wait", "3s", "--plan-limits", "anonymous=1GiB", "--rate-limit", "0")
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		waitReady(t, base)
		return p, base
	}

	p1, base := serve("serve 1")
	c := newClient(t, base, "")
	file := c.upload("noise.jpg", img)
	slow := c.createJob("image_conversion", map[string]any{"file_id": file, "output_format": "webp", "quality": 90})
	if j := c.waitStatus(slow.JobID, "processing", 60*time.Second); j.Status != "processing" {
		t.Fatalf("job finished before SIGTERM (%s); the test image is too small for this machine", j.Status)
	}
	if err := p1.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("serve did not exit 0 on SIGTERM: %v", err)
	}

	p2, base2 := serve("serve 2")
	c.base = base2
	if j := c.waitJob(slow.JobID); j.Status != "completed" {
		t.Fatalf("handed-back job after restart: %+v", j)
	}
	hist := c.eventTypes(slow.JobID)
	if count(hist, "completed") != 1 || count(hist, "started") != 2 {
		t.Fatalf("want two starts (the second a takeover) and one completion: %v", hist)
	}

	// SIGKILL right after the 202: the created event was fsynced before the
	// ack, so the job is there after the restart and runs.
	small := c.upload("small.jpg", testJPEG(t, 64, 64))
	acked := c.createJob("image_conversion", map[string]any{"file_id": small, "output_format": "png"})
	_ = p2.kill(syscall.SIGKILL)
	_, base3 := serve("serve 3")
	c.base = base3
	if j := c.waitJob(acked.JobID); j.Status != "completed" {
		t.Fatalf("job acknowledged before SIGKILL: %+v", j)
	}
	if hist := c.eventTypes(acked.JobID); count(hist, "completed") != 1 {
		t.Fatalf("history after SIGKILL: %v", hist)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
