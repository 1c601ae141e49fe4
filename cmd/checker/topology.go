package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// topology is the deployment under test: three NATS nodes, MinIO, two API
// replicas and one worker per pool, each a process on loopback.
type topology struct {
	dir     string
	bin     string // turbolane
	natsURL string
	nats    []*process
	natsMon []string // monitoring base URLs
	minio   *process
	apis    []*process
	apiURLs []string
	apiDirs []string
	workers []*process // standard, large
	ackWait time.Duration
}

// topologyConfig sets what the processes are started with.
type topologyConfig struct {
	Dir            string
	Turbolane      string // binary; empty builds ./cmd/turbolane
	AckWait        time.Duration
	LargeFileBytes int
}

func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(out)), "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not in PATH or GOPATH/bin (run make deps)", name)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// buildTurbolane builds the service binary into dir.
func buildTurbolane(dir string) (string, error) {
	out := filepath.Join(dir, "turbolane")
	b, err := exec.Command("go", "build", "-o", out, "github.com/convilyn/turbolane/cmd/turbolane").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build turbolane: %v\n%s", err, b)
	}
	return out, nil
}

// startTopology starts every process and waits until each is ready.
func startTopology(ctx context.Context, cfg topologyConfig) (*topology, error) {
	tp := &topology{dir: cfg.Dir, bin: cfg.Turbolane, ackWait: cfg.AckWait}
	if tp.bin == "" {
		bin, err := buildTurbolane(cfg.Dir)
		if err != nil {
			return nil, err
		}
		tp.bin = bin
	}
	natsBin, err := findBinary("nats-server")
	if err != nil {
		return nil, err
	}
	minioBin, err := findBinary("minio")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3*3 + 2 + 2)
	if err != nil {
		return nil, err
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i+1]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i]))
	}
	tp.natsURL = strings.Join(urls, ",")
	for i := range 3 {
		name := fmt.Sprintf("nats%d", i+1)
		conf := filepath.Join(cfg.Dir, name+".conf")
		text := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: checker
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, ports[3*i], ports[3*i+2], filepath.Join(cfg.Dir, name), ports[3*i+1], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", conf, err)
		}
		tp.nats = append(tp.nats, newProcess(cfg.Dir, name, natsBin, nil, "-c", conf))
		tp.natsMon = append(tp.natsMon, fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+2]))
	}
	for _, n := range tp.nats {
		if err := n.start(); err != nil {
			tp.stop()
			return nil, err
		}
	}
	for i := range tp.nats {
		if err := tp.waitNATS(ctx, i); err != nil {
			tp.stop()
			return nil, err
		}
	}

	minioAddr := fmt.Sprintf("127.0.0.1:%d", ports[9])
	user, pass := "checker-"+randomHex(3), randomHex(16)
	tp.minio = newProcess(cfg.Dir, "minio", minioBin,
		[]string{"MINIO_ROOT_USER=" + user, "MINIO_ROOT_PASSWORD=" + pass, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"},
		"server", filepath.Join(cfg.Dir, "minio"), "--address", minioAddr, "--console-address", fmt.Sprintf("127.0.0.1:%d", ports[10]), "--quiet")
	if err := tp.minio.start(); err != nil {
		tp.stop()
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+minioAddr+"/minio/health/live", time.Minute); err != nil {
		tp.stop()
		return nil, fmt.Errorf("wait for minio: %w", err)
	}

	common := []string{"--nats-url", tp.natsURL, "--nats-replicas", "3",
		"--s3-endpoint", minioAddr, "--s3-bucket", "turbolane", "--s3-access-key", user, "--s3-secret-key", pass}
	env := []string{"TURBOLANE_LOG_LEVEL=warn"}
	secret := randomHex(32)
	for i := range 2 {
		name := fmt.Sprintf("api%d", i+1)
		dir := filepath.Join(cfg.Dir, name)
		addr := fmt.Sprintf("127.0.0.1:%d", ports[11+i])
		args := append([]string{"api", "--addr", addr, "--data-dir", dir, "--session-secret", secret,
			"--large-file-bytes", fmt.Sprint(cfg.LargeFileBytes), "--rate-limit", "0"}, common...)
		tp.apis = append(tp.apis, newProcess(cfg.Dir, name, tp.bin, env, args...))
		tp.apiURLs = append(tp.apiURLs, "http://"+addr)
		tp.apiDirs = append(tp.apiDirs, dir)
	}
	for i, pool := range []string{"standard", "large"} {
		args := append([]string{"worker", "--pool", pool, "--data-dir", filepath.Join(cfg.Dir, "worker-"+pool),
			"--ack-wait", cfg.AckWait.String()}, common...)
		tp.workers = append(tp.workers, newProcess(cfg.Dir, "worker-"+pool, tp.bin, env, args...))
		_ = i
	}
	for i := range tp.apis {
		if err := tp.startAPI(ctx, i); err != nil {
			tp.stop()
			return nil, err
		}
	}
	for _, w := range tp.workers {
		if err := w.start(); err != nil {
			tp.stop()
			return nil, err
		}
	}
	return tp, nil
}

func (tp *topology) startAPI(ctx context.Context, i int) error {
	if err := tp.apis[i].start(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, tp.apiURLs[i]+"/readyz", 2*time.Minute); err != nil {
		return fmt.Errorf("wait for %s: %w (log %s)", tp.apis[i].name, err, tp.apis[i].log)
	}
	return nil
}

// waitNATS waits until node i reports JetStream healthy (it has caught up
// with the meta leader).
func (tp *topology) waitNATS(ctx context.Context, i int) error {
	if err := waitHTTP(ctx, tp.natsMon[i]+"/healthz", 2*time.Minute); err != nil {
		return fmt.Errorf("wait for %s: %w (log %s)", tp.nats[i].name, err, tp.nats[i].log)
	}
	return nil
}

// all lists every process.
func (tp *topology) all() []*process {
	out := append([]*process{}, tp.nats...)
	if tp.minio != nil {
		out = append(out, tp.minio)
	}
	out = append(out, tp.apis...)
	return append(out, tp.workers...)
}

// heal resumes paused processes and restarts stopped ones.
func (tp *topology) heal(ctx context.Context) error {
	for _, p := range tp.all() {
		if p.paused {
			_ = p.signal(syscall.SIGCONT, 0)
		}
	}
	for i, n := range tp.nats {
		if !n.running() {
			if err := n.start(); err != nil {
				return err
			}
		}
		if err := tp.waitNATS(ctx, i); err != nil {
			return err
		}
	}
	for i, a := range tp.apis {
		if !a.running() {
			if err := tp.startAPI(ctx, i); err != nil {
				return err
			}
		}
	}
	for _, w := range tp.workers {
		if !w.running() {
			if err := w.start(); err != nil {
				return err
			}
		}
	}
	return nil
}

// stop ends every process: APIs and workers with SIGTERM, the rest killed.
func (tp *topology) stop() {
	for _, p := range append(append([]*process{}, tp.apis...), tp.workers...) {
		_ = p.signal(syscall.SIGTERM, 40*time.Second)
	}
	for _, p := range tp.all() {
		p.kill()
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c := &http.Client{Timeout: 5 * time.Second}
	last := errors.New("no answer")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %d", res.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w", url, within, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitBusy waits up to within for the pool to have a job running (its
// consumer's ack-pending count, read from an API's /metrics), so that a
// worker fault hits a job in flight rather than an idle process.
func (tp *topology) waitBusy(ctx context.Context, pool string, within time.Duration) {
	c := &http.Client{Timeout: 2 * time.Second}
	series := fmt.Sprintf(`turbolane_queue_depth{pool=%q,state="running"} `, pool)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, base := range tp.apiURLs {
			res, err := c.Get(base + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, series); ok && v != "0" {
					return
				}
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
