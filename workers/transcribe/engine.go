package transcribe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/media"
)

// Defaults applied when the runner passes zero limits.
const (
	DefaultMaxInputBytes = 8 << 30
	// DefaultChunkSeconds is the length of the pieces a recording is cut
	// into. pocketsphinx loads its model once per piece (about 1–3 s of
	// CPU), so pieces are long enough for that to be small.
	DefaultChunkSeconds = 120
)

// ErrNoTranscriber is returned by New without a Transcriber.
var ErrNoTranscriber = errors.New("transcription engine needs a transcriber")

// Engine runs audio_transcription and video_transcription jobs. It is safe
// for concurrent use when its Transcriber is.
type Engine struct {
	tr    Transcriber
	chunk float64
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine)

// WithChunkSeconds sets the length of the audio pieces handed to the
// Transcriber one at a time (default DefaultChunkSeconds).
func WithChunkSeconds(s float64) Option {
	return func(e *Engine) {
		if s > 0 {
			e.chunk = s
		}
	}
}

// New returns an engine that transcribes with tr.
func New(tr Transcriber, opts ...Option) (*Engine, error) {
	if tr == nil {
		return nil, ErrNoTranscriber
	}
	e := &Engine{tr: tr, chunk: DefaultChunkSeconds}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Types lists the processor types this engine serves.
func (e *Engine) Types() []domain.ProcessorType {
	return []domain.ProcessorType{domain.AudioTranscription, domain.VideoTranscription}
}

// Transcriber returns the engine's Transcriber.
func (e *Engine) Transcriber() Transcriber { return e.tr }

// Process runs one transcription job.
func (e *Engine) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	if len(in.Files) != 1 {
		return nil, fmt.Errorf("transcription takes one input, got %d", len(in.Files))
	}
	src := in.Files[0]
	lim := in.Limits
	maxIn := lim.MaxInputBytes
	if maxIn <= 0 {
		maxIn = DefaultMaxInputBytes
	}
	if src.Size > maxIn {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the input has %d bytes, more than the limit of %d", src.Size, maxIn)
	}
	format, _ := in.Params["output_format"].(string)
	if format == "" {
		format = "txt"
	}
	lang, _ := in.Params["language"].(string)
	progress := func(int, string) {}
	if in.Progress != nil {
		progress = in.Progress
	}

	progress(0, "probing")
	info, err := media.Probe(ctx, src.Path, lim.MemoryLimit, lim.MaxDurationSeconds, 0)
	if err != nil {
		return nil, err
	}
	if info.Audio() == nil {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "the input has no audio track to transcribe")
	}
	tmp, err := os.MkdirTemp(in.WorkDir, "transcribe-")
	if err != nil {
		return nil, fmt.Errorf("make transcription work dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	total := info.Duration
	last := -1
	report := func(pos float64) {
		if total <= 0 {
			return
		}
		pct := int(math.Min(99, 100*pos/total))
		if pct > last {
			last = pct
			progress(pct, "transcribing")
		}
	}
	var segs []Segment
	wav := filepath.Join(tmp, "chunk.wav")
	for off := 0.0; ; off += e.chunk {
		if total > 0 && off >= total-0.01 {
			break
		}
		if lim.MaxDurationSeconds > 0 && off >= lim.MaxDurationSeconds {
			break
		}
		if err := media.ExtractWAV(ctx, src.Path, wav, off, e.chunk, lim.MemoryLimit); err != nil {
			return nil, err
		}
		if wavSeconds(wav) < 0.05 {
			break // the end of a recording whose length was unknown
		}
		base := off
		part, err := e.tr.Transcribe(ctx, wav, Options{
			Language: lang, WorkDir: tmp, MemoryLimit: lim.MemoryLimit,
			Progress: func(sec float64) { report(base + sec) },
		})
		if err != nil {
			return nil, err
		}
		for _, s := range part {
			s.Start += base
			s.End += base
			for i := range s.Words {
				s.Words[i].Start += base
				s.Words[i].End += base
			}
			segs = append(segs, s)
		}
		report(off + e.chunk)
		if total <= 0 && wavSeconds(wav) < e.chunk-0.05 {
			break
		}
	}
	_ = os.Remove(wav)

	base := strings.TrimSuffix(src.Name, filepath.Ext(src.Name))
	if base == "" || base == "." || strings.ContainsAny(base, `/\`) {
		base = "transcript"
	}
	name := base + "." + format
	out := filepath.Join(in.WorkDir, name)
	if out == src.Path {
		name = base + "-transcript." + format
		out = filepath.Join(in.WorkDir, name)
	}
	doc := Document{Engine: e.tr.Name(), Language: lang, Duration: total, Text: Text(segs), Segments: segs}
	if doc.Segments == nil {
		doc.Segments = []Segment{}
	}
	if err := WriteFile(out, format, doc); err != nil {
		return nil, err
	}
	if lim.MaxOutputBytes > 0 {
		if st, err := os.Stat(out); err == nil && st.Size() > lim.MaxOutputBytes {
			return nil, domain.Failf(domain.CodeInputTooLarge, "the transcript has %d bytes, more than the output limit of %d", st.Size(), lim.MaxOutputBytes)
		}
	}
	progress(100, "done")
	return []workers.Output{{Path: out, Name: name, MimeType: MimeType(format)}}, nil
}
