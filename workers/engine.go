package workers

import (
	"context"
	"fmt"

	"github.com/convilyn/turbolane/domain"
)

// Engine does the work of one or more processor types on local files.
//
// Process reads in.Files, writes its outputs under in.WorkDir and returns
// them. It must honour ctx (the runner cancels it on timeout, shutdown or a
// lost lease) and must not touch blob storage or the event store. Failures
// the user should see are *domain.ProcessingError values built with
// domain.Failf and one of the contract's codes (unsupported_format,
// corrupt_input, input_too_large, wrong_password, timeout, processor_error);
// any other error is reported as processor_error. Engines are shared by every
// slot of a pool, so Process must be safe for concurrent use.
type Engine interface {
	Process(ctx context.Context, in Input) ([]Output, error)
}

// Input is everything an engine needs for one job attempt.
type Input struct {
	JobID         string
	ProcessorType domain.ProcessorType
	// Params are the job's validated parameters (domain.ValidateParams):
	// integers arrive as int, defaults are filled in.
	Params map[string]any
	Files  []LocalFile
	// WorkDir is a private directory for this attempt; the runner removes it
	// afterwards, so outputs must be written inside it.
	WorkDir string
	// Progress reports progress in percent. It is cheap and never blocks: the
	// runner coalesces the calls before they become events.
	Progress func(pct int, msg string)
	Limits   Limits
}

// LocalFile is an input that has been copied from blob storage to local disk.
type LocalFile struct {
	Path     string
	Name     string
	MimeType string
	Size     int64
}

// Output is a result file written by an engine.
type Output struct {
	Path     string
	Name     string
	MimeType string
}

// Limits bound what an engine accepts, so a hostile input fails with
// input_too_large instead of exhausting the machine. Zero means the engine's
// own default.
type Limits struct {
	// MaxPixels bounds width×height of a decoded image (or page).
	MaxPixels int64
	// MaxInputBytes bounds the size of a single input file.
	MaxInputBytes int64
	// MaxPages bounds the pages of a document.
	MaxPages int
	// MaxDurationSeconds bounds the length of audio or video.
	MaxDurationSeconds float64
	// MaxOutputBytes bounds the size of one result file.
	MaxOutputBytes int64
	// MemoryLimit bounds the address space of an engine's subprocess
	// (subprocess.Cmd.MemoryLimit); 0 is unbounded.
	MemoryLimit int64
}

// ErrNoEngine is returned by Registry.Lookup when no engine serves a type.
var ErrNoEngine = domain.Unsupportedf("no engine serves this processor type")

// Registry maps processor types to engines. Build it before the pools start;
// it is read concurrently and must not change afterwards.
type Registry map[domain.ProcessorType]Engine

// Register makes e serve the given processor types, replacing any engine
// registered for them before.
func (r Registry) Register(e Engine, types ...domain.ProcessorType) {
	for _, t := range types {
		r[t] = e
	}
}

// Lookup returns the engine for t, or an error matching ErrNoEngine.
func (r Registry) Lookup(t domain.ProcessorType) (Engine, error) {
	e, ok := r[t]
	if !ok || e == nil {
		return nil, fmt.Errorf("look up engine for %s: %w", t, ErrNoEngine)
	}
	return e, nil
}
