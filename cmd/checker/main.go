package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxTakeoverWait is the goal for the longest time a job waits after its
// worker died before another worker takes it over.
const maxTakeoverWait = 60 * time.Second

// options are the checker's settings (its flags).
type options struct {
	Duration       time.Duration // how long clients create jobs
	Clients        int
	FaultEvery     time.Duration // pause between two faults
	AckWait        time.Duration
	Turbolane      string // prebuilt binary; empty builds one
	Dir            string // work dir; empty makes a temporary one
	Keep           bool   // keep the work dir
	LargeEvery     int    // every n-th job of a client is a large one
	LargeFileBytes int
	Out            io.Writer
}

func defaultOptions() options {
	return options{Duration: 10 * time.Minute, Clients: 4, FaultEvery: 10 * time.Second, AckWait: 6 * time.Second,
		LargeEvery: 5, LargeFileBytes: 40_000, Out: os.Stdout}
}

func main() {
	o := defaultOptions()
	flag.DurationVar(&o.Duration, "duration", o.Duration, "how long the clients create jobs while faults are injected")
	flag.IntVar(&o.Clients, "clients", o.Clients, "concurrent clients")
	flag.DurationVar(&o.FaultEvery, "fault-every", o.FaultEvery, "pause between the end of one fault and the next")
	flag.DurationVar(&o.AckWait, "ack-wait", o.AckWait, "workers' --ack-wait (a paused worker is stopped for 1.5× this)")
	flag.StringVar(&o.Turbolane, "turbolane", o.Turbolane, "turbolane binary (default: go build ./cmd/turbolane)")
	flag.StringVar(&o.Dir, "dir", o.Dir, "work directory for data and logs (default: a temporary one)")
	flag.BoolVar(&o.Keep, "keep", o.Keep, "keep the work directory")
	flag.IntVar(&o.LargeEvery, "large-every", o.LargeEvery, "every n-th job of each client goes to the large pool (0: none)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checker:", err)
		os.Exit(2)
	}
	if !rep.ok() {
		os.Exit(1)
	}
}

// report holds the figures of one run.
type report struct {
	Acked, Completed, Failed       int
	Lost, Duplicated, Inconsistent int
	FoldMismatch, MissingResults   int
	AttemptTerminalViolations      int
	Takeovers, TakeoversAlive      int
	MaxAliveTakeoverGap            time.Duration // from the run's start to its takeover, no dead worker
	MaxTakeoverWait                time.Duration
	Kills, Pauses                  map[string]int
	FailedRequests                 map[string]int
	AmbiguousCreates               int64
	ReadYourWrite, RYWMisses       int64
	LargeRouted, LargeJobs         int
	ReplayVerified                 int
	Problems                       []string
}

func (r *report) problem(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

func (r *report) ok() bool { return len(r.Problems) == 0 }

func (r *report) print(w io.Writer) {
	sum := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	fmt.Fprintf(w, "jobs acknowledged (202):        %d (completed %d, failed %d)\n", r.Acked, r.Completed, r.Failed)
	fmt.Fprintf(w, "lost:                           %d (goal 0)\n", r.Lost)
	fmt.Fprintf(w, "duplicated (completed twice):   %d (goal 0)\n", r.Duplicated)
	fmt.Fprintf(w, "attempts without exactly one terminal event: %d (goal 0)\n", r.AttemptTerminalViolations)
	fmt.Fprintf(w, "replicas disagreeing:           %d; view ≠ fold of events: %d; results missing: %d\n", r.Inconsistent, r.FoldMismatch, r.MissingResults)
	fmt.Fprintf(w, "replay --verify equal:          %d of 2 API replicas\n", r.ReplayVerified)
	fmt.Fprintf(w, "kills survived:                 %d %v\n", sum(r.Kills), r.Kills)
	fmt.Fprintf(w, "pauses survived:                %d %v\n", sum(r.Pauses), r.Pauses)
	fmt.Fprintf(w, "takeovers:                      %d (%d of a worker that was not killed or paused); longest wait after the worker died: %s (goal ≤ 60s)\n",
		r.Takeovers, r.TakeoversAlive, r.MaxTakeoverWait.Round(time.Millisecond))
	if r.TakeoversAlive > 0 {
		fmt.Fprintf(w, "  a run of a live worker was taken over at most %s after it started\n", r.MaxAliveTakeoverGap.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "requests failed and retried:    %d %v\n", sum(r.FailedRequests), r.FailedRequests)
	fmt.Fprintf(w, "creates without an answer:      %d (not promises, not checked)\n", r.AmbiguousCreates)
	fmt.Fprintf(w, "read-your-write on the other replica: %d checks, %d misses\n", r.ReadYourWrite, r.RYWMisses)
	fmt.Fprintf(w, "large jobs run by the large worker: %d of %d\n", r.LargeRouted, r.LargeJobs)
	if r.ok() {
		fmt.Fprintln(w, "result: OK")
		return
	}
	fmt.Fprintf(w, "result: %d PROBLEMS\n", len(r.Problems))
	for i, p := range r.Problems {
		if i == 30 {
			fmt.Fprintf(w, "  … and %d more\n", len(r.Problems)-30)
			break
		}
		fmt.Fprintln(w, "  -", p)
	}
}

// fault is one disruption: do it, hold it, undo it.
type fault struct {
	name string
	run  func(ctx context.Context, tp *topology) error
}

func faults(o options, rep *report) []fault {
	kill := func(kind string, pick func(*topology) (*process, func(context.Context) error), hold time.Duration) fault {
		return fault{"kill " + kind, func(ctx context.Context, tp *topology) error {
			p, restart := pick(tp)
			if pool, ok := strings.CutPrefix(kind, "worker-"); ok {
				tp.waitBusy(ctx, pool, 5*time.Second)
			}
			p.kill()
			rep.Kills[kind]++
			sleep(ctx, hold)
			return restart(ctx)
		}}
	}
	worker := func(i int) func(*topology) (*process, func(context.Context) error) {
		return func(tp *topology) (*process, func(context.Context) error) {
			return tp.workers[i], func(context.Context) error { return tp.workers[i].start() }
		}
	}
	api := func(i int) func(*topology) (*process, func(context.Context) error) {
		return func(tp *topology) (*process, func(context.Context) error) {
			return tp.apis[i], func(ctx context.Context) error { return tp.startAPI(ctx, i) }
		}
	}
	node := func(i int) func(*topology) (*process, func(context.Context) error) {
		return func(tp *topology) (*process, func(context.Context) error) {
			return tp.nats[i], func(ctx context.Context) error {
				if err := tp.nats[i].start(); err != nil {
					return err
				}
				return tp.waitNATS(ctx, i)
			}
		}
	}
	pause := fault{"pause worker-standard", func(ctx context.Context, tp *topology) error {
		p := tp.workers[0]
		tp.waitBusy(ctx, "standard", 5*time.Second)
		if err := p.signal(syscall.SIGSTOP, 0); err != nil {
			return err
		}
		rep.Pauses["worker-standard"]++
		sleep(ctx, o.AckWait*3/2)
		return p.signal(syscall.SIGCONT, 0)
	}}
	return []fault{
		kill("worker-standard", worker(0), time.Second),
		kill("nats node", node(0), 3*time.Second),
		kill("api", api(0), time.Second),
		pause,
		kill("worker-large", worker(1), time.Second),
		kill("nats node", node(1), 3*time.Second),
		kill("api", api(1), time.Second),
		kill("nats node", node(2), 3*time.Second),
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// run starts the topology, runs clients and faults for o.Duration and checks
// the outcome. The error is for the checker itself failing; the report's
// problems are findings.
func run(ctx context.Context, o options) (*report, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	dir := o.Dir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create work dir: %w", err)
		}
	} else {
		d, err := os.MkdirTemp("", "turbolane-checker-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	fmt.Fprintf(o.Out, "checker: starting 3 NATS nodes, MinIO, 2 APIs and 2 workers in %s\n", dir)
	tp, err := startTopology(ctx, topologyConfig{Dir: dir, Turbolane: o.Turbolane, AckWait: o.AckWait, LargeFileBytes: o.LargeFileBytes})
	if err != nil {
		return nil, err
	}
	defer tp.stop()

	rep := &report{Kills: map[string]int{}, Pauses: map[string]int{}}
	st := &stats{failed: map[string]int{}}
	var phaseMu sync.Mutex
	phase := "steady"
	current := func() string { phaseMu.Lock(); defer phaseMu.Unlock(); return phase }

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for i := range o.Clients {
		c := newClient(i, tp.apiURLs)
		wg.Go(func() { c.run(runCtx, st, current, o.LargeEvery) })
	}
	var faultErr error
	wg.Go(func() {
		list := faults(o, rep)
		for i := 0; runCtx.Err() == nil; i++ {
			sleep(runCtx, o.FaultEvery)
			if runCtx.Err() != nil {
				return
			}
			f := list[i%len(list)]
			phaseMu.Lock()
			phase = f.name
			phaseMu.Unlock()
			fmt.Fprintf(o.Out, "checker: %s %s\n", time.Now().UTC().Format("15:04:05"), f.name)
			// Faults finish even when the run's time is up.
			if err := f.run(context.WithoutCancel(runCtx), tp); err != nil {
				faultErr = fmt.Errorf("%s: %w", f.name, err)
				cancel()
			}
			phaseMu.Lock()
			phase = "steady"
			phaseMu.Unlock()
		}
	})
	wg.Wait()
	if faultErr != nil {
		return nil, faultErr
	}
	fmt.Fprintf(o.Out, "checker: load done; healing and checking %d acknowledged jobs\n", len(st.acked))
	if err := tp.heal(ctx); err != nil {
		return nil, fmt.Errorf("restart processes after the run: %w", err)
	}
	rep.FailedRequests = st.failed
	rep.AmbiguousCreates = st.ambiguous.Load()
	rep.ReadYourWrite, rep.RYWMisses = st.rywChecks.Load(), st.rywMisses.Load()
	if rep.RYWMisses > 0 {
		rep.problem("%d reads of a job on the other replica right after its 202 answered 404", rep.RYWMisses)
	}
	verify(ctx, tp, st.acked, rep)
	if rep.MaxTakeoverWait > maxTakeoverWait {
		rep.problem("a job waited %s after its worker died (goal ≤ %s)", rep.MaxTakeoverWait.Round(time.Millisecond), maxTakeoverWait)
	}
	replayVerify(ctx, tp, rep)
	rep.print(o.Out)
	return rep, nil
}

type event struct {
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

type eventData struct {
	Attempt     *int   `json:"attempt"`
	WorkerID    string `json:"workerId"`
	Lease       string `json:"lease"`
	Takeover    bool   `json:"takeover"`
	ResultFiles []struct {
		FileID string `json:"fileId"`
	} `json:"resultFiles"`
}

// workerPid reads the pid out of a worker id (host-pid-random).
func workerPid(id string) int {
	parts := strings.Split(id, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// verify checks every acknowledged job.
func verify(ctx context.Context, tp *topology, jobs []acked, rep *report) {
	rep.Acked = len(jobs)
	deadline := time.Now().Add(2*time.Minute + 2*tp.ackWait)
	for _, a := range jobs {
		c := a.Client
		// 1. Found and terminal.
		var j job
		for {
			res, err := c.get(ctx, tp.apiURLs[0]+"/api/v1/jobs/"+a.ID)
			if err == nil && res.status == http.StatusOK && json.Unmarshal(res.body, &j) == nil && terminal(j.Status) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				rep.Lost++
				rep.problem("%s (202 at %s): not terminal: %d %.200s %v", a.ID, a.At.Format("15:04:05.000"), res.status, res.body, err)
				j.Status = ""
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if j.Status == "" {
			continue
		}
		if j.Status == "completed" {
			rep.Completed++
		} else {
			rep.Failed++
			code := ""
			if j.Error != nil {
				code = j.Error.Code
			}
			rep.problem("%s failed: %s", a.ID, code)
		}
		// 2. Every replica agrees (eventually).
		want := summary(j)
		for _, url := range tp.apiURLs[1:] {
			agreed := false
			for try := 0; try < 100 && !agreed; try++ {
				res, err := c.get(ctx, url+"/api/v1/jobs/"+a.ID)
				var o job
				if err == nil && res.status == http.StatusOK && json.Unmarshal(res.body, &o) == nil && summary(o) == want {
					agreed = true
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !agreed {
				rep.Inconsistent++
				rep.problem("%s: %s disagrees with %s (%s)", a.ID, url, tp.apiURLs[0], want)
			}
		}
		// 3. History: one terminal event per attempt, at most one
		// completion, and the fold equals the view.
		res, err := c.get(ctx, tp.apiURLs[1]+"/api/v1/jobs/"+a.ID+"/events")
		var h struct{ Events []event }
		if err != nil || res.status != http.StatusOK || json.Unmarshal(res.body, &h) != nil {
			rep.problem("%s: read events: %d %v", a.ID, res.status, err)
			continue
		}
		checkHistory(tp, a, j, h.Events, rep)
		// 4. Results download.
		for _, f := range j.ResultFiles {
			url := f.DownloadURL
			if !strings.HasPrefix(url, "http") {
				url = tp.apiURLs[0] + url
			}
			if !download(ctx, c, url, f.SizeBytes) {
				rep.MissingResults++
				rep.problem("%s: result %s does not download", a.ID, f.FileID)
			}
		}
	}
}

func summary(j job) string {
	var ids []string
	for _, f := range j.ResultFiles {
		ids = append(ids, f.FileID)
	}
	code := ""
	if j.Error != nil {
		code = j.Error.Code
	}
	return fmt.Sprintf("%s retry=%d results=%v error=%s", j.Status, j.RetryCount, ids, code)
}

func checkHistory(tp *topology, a acked, j job, events []event, rep *report) {
	const prefix = "com.convilyn.turbolane.job."
	attempt, completions := 0, 0
	terminals := map[int]int{}
	status := ""
	var results []string
	lastRun := map[int]eventData{} // attempt → latest started
	lastRunAt := map[int]time.Time{}
	for _, e := range events {
		var d eventData
		_ = json.Unmarshal(e.Data, &d)
		switch strings.TrimPrefix(e.Type, prefix) {
		case "created":
			status = "queued"
		case "started":
			status = "processing"
			if d.Takeover {
				rep.Takeovers++
				// The wait counts from the kill or pause of the worker that
				// ran the attempt, while it ran it; a takeover with no such
				// outage (heart-beats lost while a NATS node was down) is
				// counted apart.
				dead := false
				if prev, ok := lastRun[attempt]; ok {
					if pid := workerPid(prev.WorkerID); pid != 0 {
						for _, w := range tp.workers {
							if at, ok := w.outageBetween(pid, lastRunAt[attempt], e.Time); ok {
								dead = true
								rep.MaxTakeoverWait = max(rep.MaxTakeoverWait, e.Time.Sub(at))
							}
						}
					}
				}
				if !dead {
					rep.TakeoversAlive++
					rep.MaxAliveTakeoverGap = max(rep.MaxAliveTakeoverGap, e.Time.Sub(lastRunAt[attempt]))
				}
			}
			lastRun[attempt], lastRunAt[attempt] = d, e.Time
			if a.Large && !d.Takeover {
				rep.LargeJobs++
				if slices.ContainsFunc(tp.workers[1:], func(p *process) bool { return hasIncarnation(p, workerPid(d.WorkerID)) }) {
					rep.LargeRouted++
				} else {
					rep.problem("%s: a large job started on worker %s, not the large worker", a.ID, d.WorkerID)
				}
			}
		case "completed":
			status = "completed"
			completions++
			terminals[attempt]++
			results = nil
			for _, f := range d.ResultFiles {
				results = append(results, f.FileID)
			}
		case "failed":
			status = "failed"
			terminals[attempt]++
		case "retried":
			status = "queued"
			attempt++
		}
	}
	if completions > 1 {
		rep.Duplicated++
		rep.problem("%s completed %d times", a.ID, completions)
	}
	for i := 0; i <= attempt; i++ {
		if terminals[i] != 1 {
			rep.AttemptTerminalViolations++
			rep.problem("%s: attempt %d has %d terminal events", a.ID, i, terminals[i])
		}
	}
	var view []string
	for _, f := range j.ResultFiles {
		view = append(view, f.FileID)
	}
	if status != j.Status || attempt != j.RetryCount || !slices.Equal(results, view) {
		rep.FoldMismatch++
		rep.problem("%s: view %s, fold of %d events: %s retry=%d results=%v", a.ID, summary(j), len(events), status, attempt, results)
	}
}

// hasIncarnation reports whether pid was ever one of p's incarnations.
func hasIncarnation(p *process, pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.pids {
		if pp == pid {
			return true
		}
	}
	return false
}

// download fetches a result (following the redirect to MinIO) and checks
// its size.
func download(ctx context.Context, c *client, url string, size int64) bool {
	res, err := c.get(ctx, url)
	if err == nil && res.status == http.StatusFound {
		res, err = c.get(ctx, res.header.Get("Location"))
	}
	return err == nil && res.status == http.StatusOK && int64(len(res.body)) == size && size > 0
}

// replayVerify stops each API replica and runs `turbolane replay --verify`
// against its data dir: its projections must equal a fresh replay.
func replayVerify(ctx context.Context, tp *topology, rep *report) {
	for i, a := range tp.apis {
		if err := a.signal(syscall.SIGTERM, 40*time.Second); err != nil {
			rep.problem("stop %s: %v", a.name, err)
		}
		cmd := exec.CommandContext(ctx, tp.bin, "replay", "--verify", "--data-dir", tp.apiDirs[i], "--nats-url", tp.natsURL)
		cmd.Env = append(os.Environ(), "TURBOLANE_LOG_LEVEL=warn")
		out, err := cmd.CombinedOutput()
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				rep.problem("run replay for %s: %v", a.name, err)
				continue
			}
			rep.problem("replay --verify of %s: %v\n%s", a.name, err, out)
			continue
		}
		rep.ReplayVerified++
	}
}
