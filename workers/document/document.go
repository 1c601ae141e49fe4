package document

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
)

// Defaults applied when an option is not given or a limit is zero.
const (
	DefaultInstances     = 1
	DefaultRestartAfter  = 100
	DefaultStartTimeout  = 2 * time.Minute
	DefaultMaxInputBytes = 256 << 20
	// DefaultMaxUnpackedBytes bounds the unpacked parts of a docx, xlsx,
	// pptx or OpenDocument package.
	DefaultMaxUnpackedBytes = 1 << 30
)

// ErrClosed is returned by Process after Close.
var ErrClosed = errors.New("document engine is closed")

// Engine converts documents on a pool of warm LibreOffice instances. It is
// safe for concurrent use: each conversion holds one instance exclusively,
// so at most Instances conversions run at once and the others wait.
type Engine struct {
	program      string
	instances    int
	restartAfter int
	memory       int64
	root         string
	ownRoot      bool
	startTimeout time.Duration
	lazy         bool
	maxUnpacked  int64
	logger       *slog.Logger

	all      []*instance
	idle     chan *instance
	ctx      context.Context // the instances' lifetime
	cancel   context.CancelFunc
	wg       sync.WaitGroup // restarts in the background
	restarts atomic.Int64
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine) error

// WithInstances sets how many LibreOffice processes are kept warm (default 1).
func WithInstances(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return fmt.Errorf("LibreOffice instances must be at least 1, got %d", n)
		}
		e.instances = n
		return nil
	}
}

// WithRestartAfter restarts an instance after n conversions (default 100),
// which bounds the memory LibreOffice leaks over time.
func WithRestartAfter(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return fmt.Errorf("LibreOffice restart-after must be at least 1, got %d", n)
		}
		e.restartAfter = n
		return nil
	}
}

// WithMemoryLimit bounds each LibreOffice process's address space
// (RLIMIT_AS via prlimit, bytes; 0 is unbounded). LibreOffice 7.4
// tolerates it: it starts and converts a small document under as little as
// 512 MiB (measured), so the engine default of 2 GiB leaves room for large
// documents.
func WithMemoryLimit(b int64) Option {
	return func(e *Engine) error {
		if b < 0 {
			return fmt.Errorf("LibreOffice memory limit must not be negative, got %d", b)
		}
		e.memory = b
		return nil
	}
}

// WithDir puts the instances' profiles under dir instead of a new temporary
// directory (which Close removes).
func WithDir(dir string) Option {
	return func(e *Engine) error {
		if dir == "" {
			return errors.New("LibreOffice profile dir must not be empty")
		}
		e.root = dir
		return nil
	}
}

// WithProgram runs another soffice than the one in PATH.
func WithProgram(path string) Option {
	return func(e *Engine) error {
		if path == "" {
			return errors.New("LibreOffice program must not be empty")
		}
		e.program = path
		return nil
	}
}

// WithStartTimeout bounds how long an instance may take to start and warm
// up (default 2 minutes: a first start on a busy machine is slow).
func WithStartTimeout(d time.Duration) Option {
	return func(e *Engine) error {
		if d <= 0 {
			return fmt.Errorf("LibreOffice start timeout must be positive, got %s", d)
		}
		e.startTimeout = d
		return nil
	}
}

// WithMaxUnpackedBytes bounds the summed uncompressed size of a zip-based
// document's parts (default DefaultMaxUnpackedBytes); larger ones fail with
// input_too_large.
func WithMaxUnpackedBytes(n int64) Option {
	return func(e *Engine) error {
		if n < 1 {
			return fmt.Errorf("unpacked size limit must be positive, got %d", n)
		}
		e.maxUnpacked = n
		return nil
	}
}

// WithLazyStart makes New return at once and starts each instance at its
// first conversion (which then pays one cold start), for processes that may
// never convert a document (tests, API-only nodes with a local worker).
func WithLazyStart() Option {
	return func(e *Engine) error {
		e.lazy = true
		return nil
	}
}

// WithLogger logs instance restarts.
func WithLogger(l *slog.Logger) Option {
	return func(e *Engine) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		e.logger = l
		return nil
	}
}

// New starts the LibreOffice instances and returns when all are warm.
func New(ctx context.Context, opts ...Option) (*Engine, error) {
	e := &Engine{
		program: "soffice", instances: DefaultInstances, restartAfter: DefaultRestartAfter,
		startTimeout: DefaultStartTimeout, maxUnpacked: DefaultMaxUnpackedBytes, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if _, err := exec.LookPath(e.program); err != nil {
		return nil, fmt.Errorf("find LibreOffice (%s): %w", e.program, err)
	}
	if e.root == "" {
		dir, err := os.MkdirTemp("", "turbolane-office-")
		if err != nil {
			return nil, fmt.Errorf("create LibreOffice profiles dir: %w", err)
		}
		e.root, e.ownRoot = dir, true
	}
	// The instances outlive ctx, which only bounds the start.
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.idle = make(chan *instance, e.instances)
	errs := make([]error, e.instances)
	var wg sync.WaitGroup
	for n := range e.instances {
		inst := newInstance(n, e.program, e.root, e.memory)
		e.all = append(e.all, inst)
		if e.lazy {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[n] = inst.start(e.ctx, ctx, e.startTimeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = e.Close()
		return nil, err
	}
	for _, inst := range e.all {
		e.idle <- inst
	}
	return e, nil
}

// Close stops every instance and removes their profiles when New made the
// directory. Conversions still running are killed.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	for _, inst := range e.all {
		inst.stop()
	}
	if e.ownRoot {
		if err := os.RemoveAll(e.root); err != nil {
			return fmt.Errorf("remove LibreOffice profiles: %w", err)
		}
	}
	return nil
}

// Restarts is how many times instances have been restarted (after N
// conversions, a failure, a crash or a timeout).
func (e *Engine) Restarts() int64 { return e.restarts.Load() }

// Process converts in.Files[0] to params["output_format"]. Failures: an
// input whose family cannot become that format or that is not an office
// document is unsupported_format, a damaged one corrupt_input, an encrypted
// one wrong_password, one above the size limits input_too_large; when ctx
// ends the conversion's instance is killed and restarted.
func (e *Engine) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	if len(in.Files) != 1 {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "document_conversion takes one file, got %d", len(in.Files))
	}
	file := in.Files[0]
	target, _ := in.Params["output_format"].(string)
	maxIn := in.Limits.MaxInputBytes
	if maxIn <= 0 {
		maxIn = DefaultMaxInputBytes
	}
	if file.Size > maxIn {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the document has %d bytes, more than the limit of %d", file.Size, maxIn)
	}
	format, err := detect(file.Path, file.Name, e.maxUnpacked)
	if err != nil {
		return nil, err
	}
	fam := formats[format]
	convertTo, ok := filters[fam][target]
	if !ok {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "a %s (%s) cannot be converted to %s; it converts to %s",
			fam, format, target, strings.Join(outputs[fam], ", "))
	}

	// LibreOffice names its output after the input: give the input a plain
	// name with the detected extension in a directory of its own.
	inDir, outDir := filepath.Join(in.WorkDir, "office-in"), filepath.Join(in.WorkDir, "office-out")
	for _, d := range []string{inDir, outDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create conversion dir: %w", err)
		}
	}
	src := filepath.Join(inDir, "input."+format)
	if err := linkOrCopy(file.Path, src); err != nil {
		return nil, err
	}

	progress(in, 0, "waiting for LibreOffice")
	inst, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	// LibreOffice reports no progress while converting.
	progress(in, 10, "converting")
	inst.takeLines()
	err = inst.convert(ctx, src, outDir, convertTo, infilters[format])
	out := filepath.Join(outDir, "input."+target)
	_, statErr := os.Stat(out)
	lines := inst.takeLines()
	healthy := err == nil && inst.alive()
	if err == nil && statErr != nil {
		// The error line may trail the client's exit by a moment.
		for range 25 {
			if hasError(lines) || !inst.alive() {
				break
			}
			time.Sleep(20 * time.Millisecond)
			lines = append(lines, inst.takeLines()...)
		}
	}
	reason := ""
	switch {
	case ctx.Err() != nil:
		reason = "the conversion was interrupted"
	case !healthy:
		reason = "the instance failed"
	}
	e.release(inst, reason)
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("convert %s to %s: %w", format, target, ctx.Err())
	case errors.Is(err, errInstanceDown):
		return nil, domain.Failf(domain.CodeProcessorError, "LibreOffice stopped; it is being restarted")
	case err != nil:
		return nil, fmt.Errorf("convert %s to %s: %w", format, target, err)
	case statErr != nil && hasError(lines):
		return nil, domain.Failf(domain.CodeCorruptInput, "LibreOffice could not read the %s document: %s", format, strings.Join(errorLines(lines), " | "))
	case statErr != nil && !healthy:
		// LibreOffice 7.4 crashes on some damaged packages (a docx whose
		// document.xml is garbage); the instance is restarted.
		return nil, domain.Failf(domain.CodeCorruptInput, "LibreOffice crashed reading the %s document; it is being restarted", format)
	case statErr != nil:
		return nil, domain.Failf(domain.CodeProcessorError, "LibreOffice wrote no %s: %s", target, strings.Join(lines, " | "))
	}

	fi, err := os.Stat(out)
	if err != nil {
		return nil, fmt.Errorf("stat result: %w", err)
	}
	if max := in.Limits.MaxOutputBytes; max > 0 && fi.Size() > max {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the %s result has %d bytes, more than the limit of %d", target, fi.Size(), max)
	}
	name := outputName(file.Name, target)
	final := filepath.Join(in.WorkDir, "result."+target)
	if err := os.Rename(out, final); err != nil {
		return nil, fmt.Errorf("move result: %w", err)
	}
	progress(in, 100, "done")
	return []workers.Output{{Path: final, Name: name, MimeType: mimeTypes[target]}}, nil
}

func progress(in workers.Input, pct int, msg string) {
	if in.Progress != nil {
		in.Progress(pct, msg)
	}
}

func hasError(lines []string) bool { return len(errorLines(lines)) > 0 }

func errorLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "Error") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// outputName is the input's base name with the new extension.
func outputName(name, ext string) string {
	base := filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if base == "" || base == "." || base == "/" {
		base = "document"
	}
	return base + "." + ext
}

func linkOrCopy(from, to string) error {
	if err := os.Link(from, to); err == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("create conversion input: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy conversion input: %w", err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("copy conversion input: %w", err)
	}
	return nil
}

// acquire takes an idle instance, starting it first if it has not been
// started yet (lazy start) or died while idle.
func (e *Engine) acquire(ctx context.Context) (*instance, error) {
	var inst *instance
	select {
	case inst = <-e.idle:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a LibreOffice instance: %w", ctx.Err())
	case <-e.ctx.Done():
		return nil, ErrClosed
	}
	if inst.alive() {
		return inst, nil
	}
	if inst.started {
		e.logger.Warn("LibreOffice instance died while idle; restarting", "instance", inst.id)
		e.restarts.Add(1)
	}
	inst.stop()
	if err := inst.start(e.ctx, ctx, e.startTimeout); err != nil {
		e.idle <- inst
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start LibreOffice: %w", ctx.Err())
		}
		return nil, domain.Failf(domain.CodeProcessorError, "LibreOffice could not be started: %v", err)
	}
	return inst, nil
}

// release returns inst to the pool, restarting it in the background first
// when it failed, died, was interrupted (reason is not empty) or has done its
// share of conversions.
func (e *Engine) release(inst *instance, reason string) {
	if reason == "" && inst.conversions < e.restartAfter {
		e.idle <- inst
		return
	}
	if reason == "" {
		reason = "restart after " + strconv.Itoa(e.restartAfter) + " conversions"
	}
	e.logger.Info("restart LibreOffice instance", "instance", inst.id, "reason", reason)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.restart(inst)
		e.idle <- inst
	}()
}

// restart stops inst and starts it again, retrying with a growing pause
// until it runs or the engine is closed.
func (e *Engine) restart(inst *instance) {
	e.restarts.Add(1)
	inst.stop()
	pause := time.Second
	for e.ctx.Err() == nil {
		err := inst.start(e.ctx, e.ctx, e.startTimeout)
		if err == nil {
			return
		}
		e.logger.Error("restart LibreOffice instance", "instance", inst.id, "err", err)
		// A failed start may leave a broken profile: begin afresh.
		_ = os.RemoveAll(filepath.Join(inst.dir, "profile"))
		select {
		case <-time.After(pause):
		case <-e.ctx.Done():
		}
		pause = min(2*pause, 30*time.Second)
	}
}
