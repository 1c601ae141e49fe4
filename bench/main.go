package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	binPath  = flag.String("bin", "bin/turbolane", "turbolane binary")
	duration = flag.Duration("duration", 10*time.Second, "length of each throughput phase")
	conc     = flag.Int("c", 16, "concurrent HTTP clients for the polling phase")
	images   = flag.Int("images", 12, "JPEG→WebP conversions in the image phase")
	only     = flag.String("only", "", "comma-separated phases to run: polling,overhead,images,memory (default all)")
	slots    = flag.Int("slots", 0, "--standard-slots for turbolane serve (0: the server's default)")
	poll     = flag.Duration("poll", 20*time.Millisecond, "how long each tiny-job client waits before each poll in the overhead phase")
	rounds   = flag.Int("rounds", 3, "alternate baseline and Turbo Lane this many times per phase, so that load from other processes hits both alike")
	bare     = flag.String("bare-server", "", "internal: serve the bare baseline handler on this address")
)

func main() {
	flag.Parse()
	if *bare != "" {
		serveBare(*bare)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func want(phase string) bool {
	if *only == "" {
		return true
	}
	for _, p := range strings.Split(*only, ",") {
		if p == phase {
			return true
		}
	}
	return false
}

func run() error {
	slotsNote := "default standard slots"
	if *slots > 0 {
		slotsNote = fmt.Sprintf("--standard-slots %d", *slots)
	}
	if *rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	fmt.Printf("# Turbo Lane benchmarks — %s, %d CPUs, %s per side and phase in %d alternating rounds, %s\n\n", time.Now().UTC().Format(time.RFC3339), numCPU(), *duration, *rounds, slotsNote)
	work, err := os.MkdirTemp("", "turbolane-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if want("polling") || want("overhead") || want("images") {
		srv, err := startServe(work, "main")
		if err != nil {
			return err
		}
		defer srv.stop()
		if want("polling") {
			if err := benchPolling(srv, work); err != nil {
				return fmt.Errorf("polling: %w", err)
			}
		}
		if want("overhead") {
			if err := benchOverhead(srv); err != nil {
				return fmt.Errorf("overhead: %w", err)
			}
		}
		if want("images") {
			if err := benchImages(srv, work); err != nil {
				return fmt.Errorf("images: %w", err)
			}
		}
	}
	if want("memory") {
		if err := benchMemory(work); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	return nil
}

// server is a turbolane serve child process.
type server struct {
	cmd     *exec.Cmd
	url     string
	natsURL string
	key     string
	http    *http.Client
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startServe(work, name string) (*server, error) {
	port, nport := freePort(), freePort()
	dir := filepath.Join(work, name)
	args := []string{"serve",
		"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dir,
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", nport),
		"--admin-token", "bench-admin", "--rate-limit", "0", "--log-level", "warn"}
	if *slots > 0 {
		args = append(args, "--standard-slots", strconv.Itoa(*slots))
	}
	cmd := exec.Command(*binPath, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run make build first): %w", *binPath, err)
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), natsURL: fmt.Sprintf("nats://127.0.0.1:%d", nport),
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := s.http.Get(s.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("turbolane serve did not become ready in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var key struct{ APIKey string }
	if err := s.call(http.MethodPost, "/api/v1/admin/api-keys", "bench-admin", map[string]any{"userId": "bench", "plan": "business"}, &key); err != nil {
		s.stop()
		return nil, err
	}
	s.key = key.APIKey
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (s *server) call(method, path, token string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token == "" {
		token = s.key
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (s *server) upload(name string, data []byte) (string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, _ := w.CreateFormFile("file", name)
	_, _ = part.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/upload", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+s.key)
	res, err := s.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var f struct{ FileID string }
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("upload: %d %s", res.StatusCode, b)
	}
	err = json.Unmarshal(b, &f)
	return f.FileID, err
}

type job struct {
	JobID       string
	Status      string
	ResultFiles []struct{ SizeBytes int64 }
	Error       *struct{ Code, Message string }
}

// runJob creates a job and polls it until it is terminal.
func (s *server) runJob(typ string, params map[string]any, poll time.Duration) (job, error) {
	var j job
	if err := s.call(http.MethodPost, "/api/v1/jobs", "", map[string]any{"processor_type": typ, "params": params}, &j); err != nil {
		return j, err
	}
	for j.Status != "completed" && j.Status != "failed" {
		time.Sleep(poll)
		if err := s.call(http.MethodGet, "/api/v1/jobs/"+j.JobID, "", nil, &j); err != nil {
			return j, err
		}
	}
	if j.Status == "failed" {
		return j, fmt.Errorf("job %s failed: %+v", j.JobID, j.Error)
	}
	return j, nil
}

// load drives GETs of url from c clients for d and returns requests/s and latencies.
// loadResult is what one load run measured; add merges runs.
type loadResult struct {
	n       int64
	elapsed time.Duration
	lats    []time.Duration
}

func (r *loadResult) add(o loadResult) {
	r.n += o.n
	r.elapsed += o.elapsed
	r.lats = append(r.lats, o.lats...)
}

func (r *loadResult) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r *loadResult) sorted() []time.Duration {
	sort.Slice(r.lats, func(i, j int) bool { return r.lats[i] < r.lats[j] })
	return r.lats
}

func load(url, token string, c int, d time.Duration) (loadResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c * 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu    sync.Mutex
		lats  []time.Duration
		count atomic.Int64
		fails atomic.Int64
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					fails.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					fails.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
				count.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if fails.Load() > 0 {
		return loadResult{}, fmt.Errorf("%d requests to %s failed", fails.Load(), url)
	}
	return loadResult{n: count.Load(), elapsed: elapsed, lats: lats}, nil
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[int(float64(len(l)-1)*p)]
}

func benchPolling(s *server, work string) error {
	png, err := tinyPNG(work)
	if err != nil {
		return err
	}
	fid, err := s.upload("tiny.png", png)
	if err != nil {
		return err
	}
	j, err := s.runJob("image_conversion", map[string]any{"file_id": fid, "output_format": "webp"}, 50*time.Millisecond)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/jobs/"+j.JobID, nil)
	req.Header.Set("Authorization", "Bearer "+s.key)
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(&body, res.Body)
	res.Body.Close()
	jobFile := filepath.Join(work, "job.json")
	if err := os.WriteFile(jobFile, body.Bytes(), 0o644); err != nil {
		return err
	}

	port := freePort()
	self, _ := os.Executable()
	bareCmd := exec.Command(self, "-bare-server", fmt.Sprintf("127.0.0.1:%d", port))
	bareCmd.Env = append(os.Environ(), "BENCH_JOB_JSON="+jobFile)
	bareCmd.Stderr = os.Stderr
	if err := bareCmd.Start(); err != nil {
		return err
	}
	defer func() { _ = bareCmd.Process.Kill(); _ = bareCmd.Wait() }()
	bareURL := fmt.Sprintf("http://127.0.0.1:%d/api/v1/jobs/%s", port, j.JobID)
	for i := 0; i < 100; i++ {
		if r, err := http.Get(bareURL); err == nil {
			r.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Warm both up, then alternate: baseline, Turbo Lane, baseline, …
	tlURL := s.url + "/api/v1/jobs/" + j.JobID
	_, _ = load(bareURL, "", *conc, time.Second)
	_, _ = load(tlURL, s.key, *conc, time.Second)
	var bare, tl loadResult
	for range *rounds {
		r, err := load(bareURL, "", *conc, *duration/time.Duration(*rounds))
		if err != nil {
			return err
		}
		bare.add(r)
		if r, err = load(tlURL, s.key, *conc, *duration/time.Duration(*rounds)); err != nil {
			return err
		}
		tl.add(r)
	}
	bRPS, bLat := bare.rps(), bare.sorted()
	tRPS, tLat := tl.rps(), tl.sorted()
	fmt.Printf("## Polling GET /api/v1/jobs/{id} (%d clients, keep-alive, %d-byte body)\n\n", *conc, body.Len())
	fmt.Printf("| server | req/s | p50 | p99 |\n|---|---|---|---|\n")
	fmt.Printf("| bare net/http handler | %.0f | %s | %s |\n", bRPS, pct(bLat, .5), pct(bLat, .99))
	fmt.Printf("| turbolane serve | %.0f | %s | %s |\n\n", tRPS, pct(tLat, .5), pct(tLat, .99))
	fmt.Printf("ratio req/s turbolane/bare = **%.2f** (goal ≥ 0.6); p99 turbolane/bare = **%.2f×** (goal ≤ 2×)\n\n",
		tRPS/bRPS, float64(pct(tLat, .99))/float64(pct(bLat, .99)))
	return nil
}

// serveBare is the baseline: a bare net/http handler returning a job JSON.
func serveBare(addr string) {
	body, err := os.ReadFile(os.Getenv("BENCH_JOB_JSON"))
	if err != nil {
		body = []byte(`{"jobId":"job_x","status":"completed"}`)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	_ = http.ListenAndServe(addr, mux)
}

func benchOverhead(s *server) error {
	// Baseline: raw synchronous JetStream publishes, 8 publishers, 512 B,
	// on the same embedded server with the same fsync setting.
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	defer js.DeleteStream(ctx, "BENCH_RAW")
	msg := bytes.Repeat([]byte("x"), 512)
	var pubs, pubErrs atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	var rawTime time.Duration
	raw := func(d time.Duration) {
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		start := time.Now()
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for pctx.Err() == nil {
					if _, err := js.Publish(ctx, fmt.Sprintf("bench.raw.%d.%d", i, pubs.Load()), msg); err != nil {
						pubErrs.Add(1)
						lastErr.Store(err)
					} else {
						pubs.Add(1)
					}
				}
			}(i)
		}
		wg.Wait()
		rawTime += time.Since(start)
	}

	work, _ := os.MkdirTemp("", "bench-tiny-")
	defer os.RemoveAll(work)
	png, err := tinyPNG(work)
	if err != nil {
		return err
	}
	fid, err := s.upload("tiny.png", png)
	if err != nil {
		return err
	}
	// Ours: tiny-image jobs end to end, 8 clients creating and polling.
	var jobs atomic.Int64
	var idsMu sync.Mutex
	var ids []string
	var lats []time.Duration // client-side, create to terminal status seen
	var jerr atomic.Value
	var jobTime time.Duration
	tiny := func(d time.Duration) {
		jctx, jcancel := context.WithTimeout(ctx, d)
		defer jcancel()
		start := time.Now()
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for jctx.Err() == nil {
					t0 := time.Now()
					j, err := s.runJob("image_conversion", map[string]any{"file_id": fid, "output_format": "png"}, *poll)
					if err != nil {
						jerr.Store(err)
						return
					}
					lat := time.Since(t0)
					idsMu.Lock()
					ids = append(ids, j.JobID)
					lats = append(lats, lat)
					idsMu.Unlock()
					jobs.Add(1)
				}
			}()
		}
		wg.Wait()
		jobTime += time.Since(start)
	}
	for range *rounds {
		raw(*duration / time.Duration(*rounds))
		tiny(*duration / time.Duration(*rounds))
	}
	if pubErrs.Load() > 0 {
		return fmt.Errorf("%d raw publishes failed, the last with %v", pubErrs.Load(), lastErr.Load())
	}
	if e, _ := jerr.Load().(error); e != nil {
		return e
	}
	rawRate := float64(pubs.Load()) / rawTime.Seconds()
	jobRate := float64(jobs.Load()) / jobTime.Seconds()
	if len(ids) == 0 {
		return errors.New("no tiny job completed")
	}
	// Events per job vary: a progress event is only written when its
	// coalesced append starts before the run ends. Average over a sample
	// spread across the phase.
	sample := min(len(ids), 50)
	total := 0
	// Where a job's time goes, from the event times the server recorded:
	// created to started (dispatch and queue) and started to completed (the
	// slot). The client-side latency adds the HTTP calls, the projection and
	// the poll interval.
	var queued, inSlot, client time.Duration
	for i := range sample {
		k := i * len(ids) / sample
		var hist struct {
			Events []struct {
				Type string
				Time time.Time
			}
		}
		if err := s.call(http.MethodGet, "/api/v1/jobs/"+ids[k]+"/events", "", nil, &hist); err != nil {
			return err
		}
		total += len(hist.Events)
		at := map[string]time.Time{}
		for _, ev := range hist.Events {
			at[ev.Type[strings.LastIndex(ev.Type, ".")+1:]] = ev.Time
		}
		queued += at["started"].Sub(at["created"])
		inSlot += at["completed"].Sub(at["started"])
		client += lats[k]
	}
	perJob := float64(total) / float64(sample)
	mean := func(d time.Duration) time.Duration { return (d / time.Duration(sample)).Round(10 * time.Microsecond) }
	fmt.Printf("## Engine overhead: tiny-image jobs end to end vs raw JetStream publishes\n\n")
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| raw sync publish, 8 publishers, 512 B, same server and fsync setting | %.0f msg/s |\n", rawRate)
	fmt.Printf("| events one job writes (mean of %d jobs) | %.2f |\n", sample, perJob)
	fmt.Printf("| baseline jobs/s (publish rate ÷ events per job) | %.0f |\n", rawRate/perJob)
	fmt.Printf("| turbolane tiny-image jobs/s (8 clients: create, process, poll every %s) | %.1f |\n", *poll, jobRate)
	fmt.Printf("| per job (mean of the sample): created → started, started → completed, client create → completed seen | %s, %s, %s |\n\n", mean(queued), mean(inSlot), mean(client))
	fmt.Printf("ratio = **%.2f** (goal ≥ 0.5)\n\n", jobRate/(rawRate/perJob))
	return nil
}

func tinyPNG(work string) ([]byte, error) {
	path := filepath.Join(work, "tiny.png")
	if err := exec.Command("vips", "black", path, "16", "16").Run(); err != nil {
		return nil, fmt.Errorf("vips black (install libvips-tools): %w", err)
	}
	return os.ReadFile(path)
}

func benchImages(s *server, work string) error {
	in := filepath.Join(work, "photo.jpg")
	// 2084×1721 like the DESIGN.md measurement: a colour gradient plus
	// noise, so the encoder has real work to do.
	data, err := photoJPEG(in, 2084, 1721, 90)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	// Baseline: the vips CLI, the same conversions two at a time.
	var cliErr atomic.Value
	var cli time.Duration
	cliRun := func(n int) {
		start := time.Now()
		sem := make(chan struct{}, 2)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				out := filepath.Join(work, fmt.Sprintf("cli-%d.webp", i))
				if b, err := exec.Command("vips", "copy", in, out+"[Q=80]").CombinedOutput(); err != nil {
					cliErr.Store(fmt.Errorf("vips copy: %v %s", err, b))
				}
			}(i)
		}
		wg.Wait()
		cli += time.Since(start)
	}
	// Ours: upload once, then create the jobs and poll them (the standard
	// pool runs two at a time by default).
	fid, err := s.upload("photo.jpg", data)
	if err != nil {
		return err
	}
	var apiErr atomic.Value
	var ours time.Duration
	apiRun := func(n int) {
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.runJob("image_conversion", map[string]any{"file_id": fid, "output_format": "webp", "quality": 80}, 50*time.Millisecond); err != nil {
					apiErr.Store(err)
				}
			}()
		}
		wg.Wait()
		ours += time.Since(start)
	}
	for r := range *rounds {
		n := *images / *rounds
		if r == *rounds-1 {
			n = *images - n*(*rounds-1)
		}
		cliRun(n)
		apiRun(n)
	}
	if e, _ := cliErr.Load().(error); e != nil {
		return e
	}
	if e, _ := apiErr.Load().(error); e != nil {
		return e
	}
	fmt.Printf("## Images: JPEG 2084×1721 → WebP q80, %d conversions\n\n", *images)
	fmt.Printf("| path | total | per image | images/s |\n|---|---|---|---|\n")
	fmt.Printf("| vips CLI (`vips copy in.jpg out.webp[Q=80]`), 2 at a time | %s | %s | %.2f |\n", cli.Round(time.Millisecond), (cli / time.Duration(*images)).Round(time.Millisecond), float64(*images)/cli.Seconds())
	slotsNote := "2 worker slots (default)"
	if *slots > 0 {
		slotsNote = fmt.Sprintf("%d worker slots", *slots)
	}
	fmt.Printf("| turbolane API (create, process, poll), %s | %s | %s | %.2f |\n\n", slotsNote, ours.Round(time.Millisecond), (ours / time.Duration(*images)).Round(time.Millisecond), float64(*images)/ours.Seconds())
	fmt.Printf("ratio throughput turbolane/CLI = **%.2f** (goal ≥ 1.0)\n\n", cli.Seconds()/ours.Seconds())
	return nil
}

func benchMemory(work string) error {
	s, err := startServe(work, "memory")
	if err != nil {
		return err
	}
	defer s.stop()
	in := filepath.Join(work, "big.jpg")
	// 8660×5773 = 49.99 MP, just under the default --max-pixels.
	data, err := photoJPEG(in, 8660, 5773, 85)
	if err != nil {
		return err
	}
	before := rssKiB(s.cmd.Process.Pid, "VmHWM")
	fid, err := s.upload("big.jpg", data)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := s.runJob("image_conversion", map[string]any{"file_id": fid, "output_format": "webp", "quality": 80}, 100*time.Millisecond); err != nil {
		return err
	}
	took := time.Since(t0)
	after := rssKiB(s.cmd.Process.Pid, "VmHWM")
	fmt.Printf("## Memory: `turbolane serve` converting a 50 MP JPEG (8660×5773, %.1f MiB) to WebP\n\n", float64(len(data))/(1<<20))
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| peak RSS before the job (VmHWM) | %.0f MiB |\n", float64(before)/1024)
	fmt.Printf("| peak RSS after upload + conversion (VmHWM) | %.0f MiB |\n", float64(after)/1024)
	fmt.Printf("| conversion time | %s |\n\n", took.Round(time.Millisecond))
	return nil
}

// photoJPEG writes a colour JPEG of w×h to path and returns it: a diagonal
// gradient per channel plus seeded noise, so it is the same in every run and
// not trivially compressible (a flat or grey image would flatter the
// encoder and the memory figure).
func photoJPEG(path string, w, h, quality int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	clamp := func(v int) uint8 { return uint8(min(max(v, 0), 255)) }
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			n := int(rng.Uint32()%49) - 24
			row[4*x+0] = clamp(255*x/w + n)
			row[4*x+1] = clamp(255*y/h + n/2)
			row[4*x+2] = clamp(255*(x+y)/(w+h) - n)
			row[4*x+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("encode test JPEG: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func rssKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
