package transcribe

import (
	"context"
	"strings"
)

// Transcriber turns a 16 kHz mono 16-bit WAV file into timed segments.
// Implementations must be safe for concurrent use.
type Transcriber interface {
	// Name identifies the engine in results ("pocketsphinx", "whisper.cpp",
	// "openai").
	Name() string
	// Transcribe recognises the speech in wav. Segment times are seconds
	// from the start of wav; opts.Progress, when not nil, receives the
	// position in seconds reached so far. Failures the user should see are
	// *domain.ProcessingError values (unsupported_format for a language the
	// engine lacks, processor_error when the engine fails); when ctx ends
	// the error wraps ctx.Err(). Safe for concurrent use.
	Transcribe(ctx context.Context, wav string, opts Options) ([]Segment, error)
}

// Options are per-call settings.
type Options struct {
	// Language is the spoken language as an ISO 639-1 code ("en").
	Language string
	// WorkDir is a private directory for temporary files.
	WorkDir string
	// MemoryLimit bounds subprocesses' address space (0 = none).
	MemoryLimit int64
	// Progress receives the audio position reached, in seconds.
	Progress func(sec float64)
}

// Segment is a stretch of recognised speech.
type Segment struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Text  string  `json:"text"`
	Words []Word  `json:"words,omitempty"`
}

// Word is one recognised word with its timing and, where the engine gives
// it, its confidence (0..1).
type Word struct {
	Start      float64  `json:"start"`
	End        float64  `json:"end"`
	Word       string   `json:"word"`
	Confidence *float64 `json:"confidence,omitempty"`
}

// Text joins the segments' text with spaces.
func Text(segs []Segment) string {
	parts := make([]string, 0, len(segs))
	for _, s := range segs {
		if t := strings.TrimSpace(s.Text); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}
