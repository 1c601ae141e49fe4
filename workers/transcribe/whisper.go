package transcribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// WhisperCPP runs whisper.cpp's whisper-cli with a ggml model file.
type WhisperCPP struct {
	// CLI is the whisper-cli binary.
	CLI string
	// Model is the ggml model file (e.g. ggml-base.en.bin).
	Model string
	// Threads is passed as -t when > 0.
	Threads int
}

var _ Transcriber = WhisperCPP{}

// Name implements Transcriber.
func (WhisperCPP) Name() string { return "whisper.cpp" }

// Args returns the command line for one WAV file; the JSON result is
// written to outBase+".json".
func (w WhisperCPP) Args(wav, outBase, language string) []string {
	if language == "" {
		language = "en"
	}
	args := []string{"-m", w.Model, "-f", wav, "-l", language, "-oj", "-of", outBase, "-pp"}
	if w.Threads > 0 {
		args = append(args, "-t", strconv.Itoa(w.Threads))
	}
	return args
}

var whisperProgress = regexp.MustCompile(`progress\s*=\s*(\d+)%`)

// Transcribe implements Transcriber.
func (w WhisperCPP) Transcribe(ctx context.Context, wav string, opts Options) ([]Segment, error) {
	if w.CLI == "" || w.Model == "" {
		return nil, errors.New("whisper.cpp needs --whisper-cli and --whisper-model")
	}
	dir := opts.WorkDir
	if dir == "" {
		dir = filepath.Dir(wav)
	}
	outBase := filepath.Join(dir, strings.TrimSuffix(filepath.Base(wav), filepath.Ext(wav))+"-whisper")
	seconds := wavSeconds(wav)
	cmd := subprocess.Cmd{Path: w.CLI, Args: w.Args(wav, outBase, opts.Language), Dir: dir, MemoryLimit: opts.MemoryLimit}
	if opts.Progress != nil && seconds > 0 {
		cmd.OnStderrLine = func(l string) {
			if m := whisperProgress.FindStringSubmatch(l); m != nil {
				pct, _ := strconv.Atoi(m[1])
				opts.Progress(seconds * float64(pct) / 100)
			}
		}
	}
	if _, err := subprocess.Run(ctx, cmd); err != nil {
		if ctx.Err() != nil || errors.Is(err, subprocess.ErrNotInstalled) {
			return nil, fmt.Errorf("run whisper-cli: %w", err)
		}
		return nil, domain.Failf(domain.CodeProcessorError, "whisper-cli failed: %v", err)
	}
	f, err := os.Open(outBase + ".json")
	if err != nil {
		return nil, fmt.Errorf("open whisper-cli result: %w", err)
	}
	defer f.Close()
	return ParseWhisperJSON(f)
}

// ParseWhisperJSON reads whisper-cli's -oj output: a "transcription" array
// of {"offsets": {"from": ms, "to": ms}, "text": "…"}.
func ParseWhisperJSON(r interface{ Read([]byte) (int, error) }) ([]Segment, error) {
	var doc struct {
		Transcription []struct {
			Offsets struct {
				From float64 `json:"from"`
				To   float64 `json:"to"`
			} `json:"offsets"`
			Text string `json:"text"`
		} `json:"transcription"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode whisper-cli JSON: %w", err)
	}
	segs := make([]Segment, 0, len(doc.Transcription))
	for _, t := range doc.Transcription {
		text := strings.TrimSpace(t.Text)
		if text == "" || text == "[BLANK_AUDIO]" {
			continue
		}
		segs = append(segs, Segment{Start: t.Offsets.From / 1000, End: t.Offsets.To / 1000, Text: text})
	}
	return segs, nil
}

// wavSeconds is the length of a 16 kHz mono s16 WAV from its size.
func wavSeconds(path string) float64 {
	st, err := os.Stat(path)
	if err != nil || st.Size() <= 44 {
		return 0
	}
	return float64(st.Size()-44) / 32000
}
