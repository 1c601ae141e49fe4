package workers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// Runner defaults.
const (
	DefaultMaxDeliveries    = 5
	DefaultTimeout          = 10 * time.Minute
	DefaultResultRetention  = 24 * time.Hour
	DefaultProgressInterval = time.Second
	DefaultMaxProgress      = 20
)

// ErrHandedBack is returned by Runner.Handle when the run stopped without an
// outcome (shutdown, or a transient store failure); the pool hands the item
// back so that another run retries it.
var ErrHandedBack = errors.New("work item handed back")

// Runner runs one work item at a time per call of Handle: claim the attempt,
// stream the inputs to a private directory, run the engine, upload the
// results and complete or fail the job. It is safe for concurrent use; a
// pool calls Handle from every slot.
type Runner struct {
	jobs    JobStore
	files   FileRecords
	blobs   Blobs
	engines Registry

	pool             string
	workerID         string
	workRoot         string
	maxDeliveries    uint64
	timeout          time.Duration
	timeouts         map[domain.ProcessorType]time.Duration
	retention        time.Duration
	limits           Limits
	progressInterval time.Duration
	maxProgress      int
	observer         Observer
	log              *slog.Logger
	now              func() time.Time
}

// RunnerOption configures a Runner.
type RunnerOption func(*Runner) error

// WithPoolName names the pool in metrics and logs.
func WithPoolName(name string) RunnerOption {
	return func(r *Runner) error { r.pool = name; return nil }
}

// WithWorkerID sets the id recorded in started events (default: host, pid
// and a random suffix).
func WithWorkerID(id string) RunnerOption {
	return func(r *Runner) error {
		if id == "" {
			return errors.New("worker id must not be empty")
		}
		r.workerID = id
		return nil
	}
}

// WithWorkRoot sets the directory under which each run gets its temporary
// directory (default: os.TempDir()); it is created when missing.
func WithWorkRoot(dir string) RunnerOption {
	return func(r *Runner) error {
		if dir == "" {
			return errors.New("work root must not be empty")
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create work root: %w", err)
		}
		r.workRoot = dir
		return nil
	}
}

// WithMaxDeliveries sets how many deliveries of one work item are tolerated
// before the job fails with worker_lost (default 5): an item delivered more
// often keeps killing or losing its workers.
func WithMaxDeliveries(n int) RunnerOption {
	return func(r *Runner) error {
		if n < 1 {
			return fmt.Errorf("max deliveries must be at least 1, got %d", n)
		}
		r.maxDeliveries = uint64(n)
		return nil
	}
}

// WithDefaultTimeout sets the processing timeout for every processor type
// without its own (default 10 minutes). Time spent queued does not count.
func WithDefaultTimeout(d time.Duration) RunnerOption {
	return func(r *Runner) error {
		if d <= 0 {
			return fmt.Errorf("timeout must be positive, got %s", d)
		}
		r.timeout = d
		return nil
	}
}

// WithProcessorTimeout sets the processing timeout of one processor type.
func WithProcessorTimeout(t domain.ProcessorType, d time.Duration) RunnerOption {
	return func(r *Runner) error {
		if d <= 0 {
			return fmt.Errorf("timeout of %s must be positive, got %s", t, d)
		}
		r.timeouts[t] = d
		return nil
	}
}

// WithResultRetention sets how long results (and the inputs a job used) are
// kept after the job finishes (default 24 h).
func WithResultRetention(d time.Duration) RunnerOption {
	return func(r *Runner) error {
		if d <= 0 {
			return fmt.Errorf("result retention must be positive, got %s", d)
		}
		r.retention = d
		return nil
	}
}

// WithLimits sets the limits passed to every engine.
func WithLimits(l Limits) RunnerOption {
	return func(r *Runner) error { r.limits = l; return nil }
}

// WithProgressCoalescing sets the least time between two progress events of
// a run and their largest number per run (defaults 1 s and 20).
func WithProgressCoalescing(interval time.Duration, maxEvents int) RunnerOption {
	return func(r *Runner) error {
		if interval < 0 || maxEvents < 0 {
			return fmt.Errorf("progress coalescing needs a non-negative interval and count, got %s and %d", interval, maxEvents)
		}
		r.progressInterval, r.maxProgress = interval, maxEvents
		return nil
	}
}

// WithObserver sets the metrics hooks.
func WithObserver(o Observer) RunnerOption {
	return func(r *Runner) error {
		if o == nil {
			return errors.New("observer must not be nil")
		}
		r.observer = o
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) RunnerOption {
	return func(r *Runner) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		r.log = l
		return nil
	}
}

// NewRunner returns a runner over the given stores and engines.
func NewRunner(jobs JobStore, blobs Blobs, files FileRecords, engines Registry, opts ...RunnerOption) (*Runner, error) {
	if jobs == nil || files == nil || blobs == nil || engines == nil {
		return nil, errors.New("new runner: jobs, files, blobs and engines are required")
	}
	r := &Runner{
		jobs: jobs, files: files, blobs: blobs, engines: engines,
		pool:             domain.PoolStandard,
		workerID:         NewWorkerID(),
		workRoot:         os.TempDir(),
		maxDeliveries:    DefaultMaxDeliveries,
		timeout:          DefaultTimeout,
		timeouts:         map[domain.ProcessorType]time.Duration{},
		retention:        DefaultResultRetention,
		progressInterval: DefaultProgressInterval,
		maxProgress:      DefaultMaxProgress,
		observer:         nopObserver{},
		log:              slog.Default(),
		now:              time.Now,
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, fmt.Errorf("new runner: %w", err)
		}
	}
	return r, nil
}

// WorkerID returns the id this runner records in started events.
func (r *Runner) WorkerID() string { return r.workerID }

// Handle runs one delivery. It returns nil when the item is done with —
// completed, failed, or dropped because it is stale, duplicated or its job
// is gone — and the pool acknowledges it. It returns an error wrapping
// ErrHandedBack (or a store error) when the item must be redelivered: on
// shutdown (ctx cancelled) the job is not failed but handed back, so another
// worker takes it over.
func (r *Runner) Handle(ctx context.Context, d Delivery) error {
	it := d.Item()
	if !domain.ValidID("job", it.JobID) {
		r.log.Warn("drop work item with an invalid job id", "job", it.JobID)
		return nil
	}
	if d.NumDelivered() > r.maxDeliveries {
		evs, err := r.jobs.Load(ctx, it.JobID)
		if err != nil {
			return fmt.Errorf("load job %s: %w", it.JobID, err)
		}
		job := domain.Fold(evs)
		if !job.Exists() || job.Status.Terminal() || it.Attempt != job.RetryCount {
			return nil
		}
		_, err = r.jobs.Execute(ctx, job.ID, domain.Fail{ID: domain.NewID("cmd"), Error: domain.JobError{
			Code:    domain.CodeWorkerLost,
			Message: fmt.Sprintf("the job was handed to a worker %d times and no worker finished it", d.NumDelivered()-1),
		}})
		if err != nil && !settled(err) {
			return fmt.Errorf("fail job %s as worker_lost: %w", job.ID, err)
		}
		return nil
	}
	// No read before the start: Start is decided on the job's current state
	// and refuses exactly what this run must drop (a missing, finished or
	// running-elsewhere-and-same-lease job, a stale attempt), which saves a
	// history read per job (docs/benchmarks.md, tiny jobs).
	lease := domain.NewID("lease")
	job, err := r.jobs.Execute(ctx, it.JobID, domain.Start{ID: domain.NewID("cmd"), Attempt: it.Attempt, WorkerID: r.workerID, Lease: lease})
	switch {
	case errors.Is(err, domain.ErrJobNotQueued), errors.Is(err, domain.ErrAlreadyCompleted),
		errors.Is(err, domain.ErrStaleAttempt), errors.Is(err, domain.ErrJobNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("start job %s: %w", it.JobID, err)
	}

	start := time.Now()
	r.observer.OnStart(r.pool, job.ProcessorType)
	outcome, err := r.run(ctx, job, lease)
	r.observer.OnFinish(r.pool, job.ProcessorType, outcome, time.Since(start))
	if err != nil {
		r.log.Warn("hand back work item", "job", job.ID, "attempt", it.Attempt, "pool", r.pool, "err", err)
	} else {
		r.log.Debug("work item done", "job", job.ID, "attempt", it.Attempt, "pool", r.pool, "outcome", outcome)
	}
	if outcome == OutcomeCompleted || outcome == OutcomeFailed {
		r.extendInputs(ctx, job)
	}
	return err
}

// settled reports whether a terminal command was refused because the job is
// already past it: someone else finished, failed or deleted it.
func settled(err error) bool {
	return errors.Is(err, domain.ErrAlreadyCompleted) || errors.Is(err, domain.ErrJobNotProcessing) ||
		errors.Is(err, domain.ErrJobNotFound) || errors.Is(err, domain.ErrLeaseLost)
}

// errLeaseLost is the cancellation cause when progress finds the job taken
// over or deleted.
var errLeaseLost = errors.New("lease lost")

func (r *Runner) run(ctx context.Context, job domain.Job, lease string) (Outcome, error) {
	if err := os.MkdirAll(r.workRoot, 0o750); err != nil {
		return OutcomeHandedBack, fmt.Errorf("create work root %s: %w", r.workRoot, err)
	}
	dir, err := os.MkdirTemp(r.workRoot, "job-*")
	if err != nil {
		return OutcomeHandedBack, fmt.Errorf("create work dir for job %s: %w", job.ID, err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("remove work dir", "dir", dir, "err", err)
		}
	}()

	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)

	engine, err := r.engines.Lookup(job.ProcessorType)
	if err != nil {
		return r.fail(ctx, job, lease, domain.Failf(domain.CodeUnsupportedFormat, "no engine processes %s here", job.ProcessorType))
	}
	files, err := r.download(runCtx, job, dir)
	if err != nil {
		if ctx.Err() != nil {
			return OutcomeHandedBack, fmt.Errorf("download inputs of job %s: %w: %w", job.ID, ErrHandedBack, err)
		}
		var pe *domain.ProcessingError
		if errors.As(err, &pe) {
			return r.fail(ctx, job, lease, pe)
		}
		return OutcomeHandedBack, fmt.Errorf("download inputs of job %s: %w", job.ID, err)
	}

	timeout := r.timeout
	if t, ok := r.timeouts[job.ProcessorType]; ok {
		timeout = t
	}
	progCtx, stopProg := context.WithCancel(runCtx)
	prog := startProgress(progCtx, r.jobs, job.ID, lease, r.progressInterval, r.maxProgress, func() { cancelRun(errLeaseLost) })
	engCtx, cancelEng := context.WithTimeout(runCtx, timeout)
	outs, err := engine.Process(engCtx, Input{
		JobID: job.ID, ProcessorType: job.ProcessorType, Params: normalize(job), Files: files,
		WorkDir: dir, Progress: prog.report, Limits: r.limits,
	})
	// Only an engine that gave up counts as timed out: one that finished
	// just as the deadline passed has finished.
	timedOut := err != nil && errors.Is(engCtx.Err(), context.DeadlineExceeded) && runCtx.Err() == nil
	cancelEng()
	prog.stop(stopProg)

	switch {
	case ctx.Err() != nil:
		return OutcomeHandedBack, fmt.Errorf("run job %s: %w: %w", job.ID, ErrHandedBack, context.Cause(ctx))
	case errors.Is(context.Cause(runCtx), errLeaseLost):
		return OutcomeLost, nil
	case timedOut:
		return r.fail(ctx, job, lease, domain.Failf(domain.CodeTimeout, "processing took longer than %s", timeout))
	case err != nil:
		return r.fail(ctx, job, lease, err)
	case len(outs) == 0:
		return r.fail(ctx, job, lease, domain.Failf(domain.CodeProcessorError, "the engine produced no output"))
	}

	results, err := r.upload(ctx, job, dir, outs)
	if err != nil {
		r.discard(ctx, results)
		if ctx.Err() != nil {
			return OutcomeHandedBack, fmt.Errorf("upload results of job %s: %w: %w", job.ID, ErrHandedBack, err)
		}
		var pe *domain.ProcessingError
		if errors.As(err, &pe) {
			return r.fail(ctx, job, lease, pe)
		}
		return OutcomeHandedBack, fmt.Errorf("upload results of job %s: %w", job.ID, err)
	}
	_, err = r.jobs.Execute(ctx, job.ID, domain.Complete{ID: domain.NewID("cmd"), Lease: lease, ResultFiles: results})
	switch {
	case err == nil:
		return OutcomeCompleted, nil
	case settled(err):
		// Taken over or deleted while we worked: our results belong to no job.
		r.discard(ctx, results)
		return OutcomeLost, nil
	default:
		r.discard(ctx, results)
		return OutcomeHandedBack, fmt.Errorf("complete job %s: %w", job.ID, err)
	}
}

// fail records the engine's error as the job's failure.
func (r *Runner) fail(ctx context.Context, job domain.Job, lease string, cause error) (Outcome, error) {
	jerr := domain.AsJobError(cause)
	_, err := r.jobs.Execute(ctx, job.ID, domain.Fail{ID: domain.NewID("cmd"), Lease: lease, Error: jerr})
	switch {
	case err == nil:
		return OutcomeFailed, nil
	case settled(err):
		return OutcomeLost, nil
	default:
		return OutcomeHandedBack, fmt.Errorf("fail job %s with %s: %w", job.ID, jerr.Code, err)
	}
}

// download streams every input from blob storage into dir, never holding a
// whole file in memory.
func (r *Runner) download(ctx context.Context, job domain.Job, dir string) ([]LocalFile, error) {
	out := make([]LocalFile, 0, len(job.InputFiles))
	for i, in := range job.InputFiles {
		path := filepath.Join(dir, fmt.Sprintf("in-%d-%s", i, safeName(in.FileName)))
		n, err := r.fetch(ctx, in.FileID, path)
		if err != nil {
			return nil, err
		}
		out = append(out, LocalFile{Path: path, Name: in.FileName, MimeType: in.MimeType, Size: n})
	}
	return out, nil
}

func (r *Runner) fetch(ctx context.Context, fileID, path string) (n int64, err error) {
	rc, _, err := r.blobs.Get(ctx, fileID)
	if err != nil {
		if isNotFound(err) {
			return 0, domain.Failf(domain.CodeProcessorError, "the input file %s is no longer stored", fileID)
		}
		return 0, fmt.Errorf("get input %s: %w", fileID, err)
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create local copy of %s: %w", fileID, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close local copy of %s: %w", fileID, cerr)
		}
	}()
	if n, err = io.Copy(f, rc); err != nil {
		return n, fmt.Errorf("copy input %s to disk: %w", fileID, err)
	}
	return n, nil
}

// upload streams each output to blob storage under a new file id and writes
// its record. It returns the results uploaded so far even on error, so the
// caller can discard them.
func (r *Runner) upload(ctx context.Context, job domain.Job, dir string, outs []Output) ([]domain.ResultFile, error) {
	results := make([]domain.ResultFile, 0, len(outs))
	for _, o := range outs {
		rel, err := filepath.Rel(dir, o.Path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			return results, domain.Failf(domain.CodeProcessorError, "the engine wrote %q outside its work directory", o.Name)
		}
		rf, err := r.put(ctx, job, o)
		if err != nil {
			return results, err
		}
		results = append(results, rf)
	}
	return results, nil
}

func (r *Runner) put(ctx context.Context, job domain.Job, o Output) (domain.ResultFile, error) {
	f, err := os.Open(o.Path)
	if err != nil {
		return domain.ResultFile{}, fmt.Errorf("open output %s: %w", o.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return domain.ResultFile{}, fmt.Errorf("stat output %s: %w", o.Name, err)
	}
	mime := o.MimeType
	if mime == "" {
		mime = "application/octet-stream"
	}
	rf := domain.ResultFile{FileID: domain.NewFileID(), FileName: o.Name, MimeType: mime, SizeBytes: st.Size()}
	now := r.now().UTC()
	rec := domain.File{
		ID: rf.FileID, UserID: job.UserID, Name: o.Name, Size: st.Size(), MimeType: mime,
		Kind: domain.FileResult, JobID: job.ID, Confirmed: true, CreatedAt: now, ExpiresAt: now.Add(r.retention),
	}
	// The bytes and the record are written at the same time: each is a
	// durable write of its own (file and directory fsyncs; a KV put), and
	// neither needs the other. A record whose bytes are not there yet is
	// harmless: its id is new and reaches no one until the completed event,
	// which is appended only after both are durable. Should the process die
	// in between, the record or the blob is an orphan no job names, and the
	// retention sweeper deletes it.
	putCtx, cancelPut := context.WithCancel(ctx)
	defer cancelPut()
	blobErr := make(chan error, 1)
	go func() { blobErr <- r.blobs.Put(putCtx, rf.FileID, f, st.Size(), mime) }()
	recErr := r.files.Put(ctx, rec)
	if recErr != nil {
		cancelPut()
	}
	if err := <-blobErr; err != nil || recErr != nil {
		if recErr == nil {
			r.deleteRecord(ctx, rf.FileID)
		}
		r.deleteBlob(ctx, rf.FileID)
		if err != nil {
			return domain.ResultFile{}, fmt.Errorf("store output %s: %w", o.Name, err)
		}
		return domain.ResultFile{}, fmt.Errorf("record output %s: %w", o.Name, recErr)
	}
	return rf, nil
}

func (r *Runner) deleteRecord(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.files.Delete(ctx, id); err != nil && !errors.Is(err, domain.ErrFileNotFound) {
		r.log.Warn("delete record of discarded result", "file", id, "err", err)
	}
}

// discard deletes uploaded results that no job will own. It runs even after
// shutdown began, briefly, so a handed-back run leaves no orphans.
func (r *Runner) discard(ctx context.Context, results []domain.ResultFile) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, rf := range results {
		r.deleteRecord(ctx, rf.FileID)
		r.deleteBlob(ctx, rf.FileID)
	}
}

func (r *Runner) deleteBlob(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.blobs.Delete(ctx, id); err != nil {
		r.log.Warn("delete blob of discarded result", "file", id, "err", err)
	}
}

// inputExtensionSlack is how much longer than needed an input is kept when
// its retention is extended, so that the jobs finishing right after on the
// same input (a batch converting one upload to several formats) find it
// extended already and skip the record write: a KV put with an fsync, about
// a tenth of a tiny job's time in its slot (docs/benchmarks.md).
const inputExtensionSlack = time.Minute

// extendInputs keeps the uploads a finished job used for at least as long as
// its results, so a retry or a re-download still finds them.
func (r *Runner) extendInputs(ctx context.Context, job domain.Job) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	until := r.now().UTC().Add(r.retention)
	for _, in := range job.InputFiles {
		f, err := r.files.Get(ctx, in.FileID)
		if err != nil {
			if !errors.Is(err, domain.ErrFileNotFound) {
				r.log.Warn("read input record to extend its retention", "file", in.FileID, "err", err)
			}
			continue
		}
		if !f.ExpiresAt.IsZero() && !f.ExpiresAt.Before(until) {
			continue
		}
		f.ExpiresAt = until.Add(min(inputExtensionSlack, r.retention/100))
		if err := r.files.Put(ctx, f); err != nil {
			r.log.Warn("extend retention of input", "file", in.FileID, "err", err)
		}
	}
}

// safeName keeps a local file name harmless: no directories, no leading
// dots, printable ASCII only, and short. The engine sees the real name in
// LocalFile.Name.
func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(b) < 100; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b = append(b, c)
		case c == '.' && len(b) > 0:
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "input"
	}
	return string(b)
}

// normalize gives the engine the params as domain.ValidateParams returns
// them: the JSON round trip through the event stream turns ints into
// float64. Params written under an older spec that no longer validate are
// passed as stored; the engine's own parsing decides.
func normalize(job domain.Job) map[string]any {
	p, _, err := domain.ValidateParams(job.ProcessorType, job.Params)
	if err != nil {
		return job.Params
	}
	return p
}
