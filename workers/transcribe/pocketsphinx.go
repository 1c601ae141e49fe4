package transcribe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// DefaultPocketsphinxModel is where Debian's pocketsphinx-en-us puts the
// acoustic model, language model and dictionary.
const DefaultPocketsphinxModel = "/usr/share/pocketsphinx/model/en-us"

// Pocketsphinx runs CMU pocketsphinx_continuous on each file. The zero value
// uses the program from PATH and DefaultPocketsphinxModel.
type Pocketsphinx struct {
	// Program is the pocketsphinx_continuous binary (default from PATH).
	Program string
	// ModelDir holds en-us/ (acoustic model), en-us.lm.bin and
	// cmudict-en-us.dict; missing files fall back to the program's built-in
	// defaults.
	ModelDir string
}

var _ Transcriber = Pocketsphinx{}

// Name implements Transcriber.
func (Pocketsphinx) Name() string { return "pocketsphinx" }

// Args returns the command line for one WAV file.
func (p Pocketsphinx) Args(wav string) []string {
	dir := p.ModelDir
	if dir == "" {
		dir = DefaultPocketsphinxModel
	}
	args := []string{"-infile", wav, "-time", "yes", "-logfn", "/dev/null"}
	for _, m := range []struct{ flag, name string }{{"-hmm", "en-us"}, {"-lm", "en-us.lm.bin"}, {"-dict", "cmudict-en-us.dict"}} {
		if path := filepath.Join(dir, m.name); exists(path) {
			args = append(args, m.flag, path)
		}
	}
	return args
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// Transcribe implements Transcriber.
func (p Pocketsphinx) Transcribe(ctx context.Context, wav string, opts Options) ([]Segment, error) {
	if l := strings.ToLower(opts.Language); l != "" && l != "en" && l != "en-us" && l != "eng" {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "pocketsphinx has only the en-us model, not language %q", opts.Language)
	}
	prog := p.Program
	if prog == "" {
		prog = "pocketsphinx_continuous"
	}
	parser := &sphinxParser{progress: opts.Progress}
	_, err := subprocess.Run(ctx, subprocess.Cmd{
		Path: prog, Args: p.Args(wav), Dir: opts.WorkDir, MemoryLimit: opts.MemoryLimit,
		OnStdoutLine: parser.line,
	})
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, subprocess.ErrNotInstalled) {
			return nil, fmt.Errorf("run pocketsphinx: %w", err)
		}
		return nil, domain.Failf(domain.CodeProcessorError, "pocketsphinx failed: %v", err)
	}
	return parser.done(), nil
}

// ParsePocketsphinx reads the stdout of pocketsphinx_continuous -time yes:
// per utterance a hypothesis line and then one "word start end confidence"
// line per word, framed by <s> and </s>. Fillers (<sil>, [NOISE], ++…++)
// are dropped and alternate pronunciation marks ("was(2)") removed.
func ParsePocketsphinx(out string) []Segment {
	p := &sphinxParser{}
	for _, l := range strings.Split(out, "\n") {
		p.line(l)
	}
	return p.done()
}

type sphinxParser struct {
	progress func(float64)
	segs     []Segment
	cur      *Segment
}

func (p *sphinxParser) line(l string) {
	f := strings.Fields(l)
	if len(f) != 4 {
		return // a hypothesis line; the words follow with their times
	}
	start, err1 := strconv.ParseFloat(f[1], 64)
	end, err2 := strconv.ParseFloat(f[2], 64)
	conf, err3 := strconv.ParseFloat(f[3], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	w := f[0]
	switch {
	case w == "<s>":
		p.flush()
		p.cur = &Segment{Start: start, End: end}
		return
	case w == "</s>":
		if p.cur != nil {
			p.cur.End = end
		}
		p.flush()
		if p.progress != nil {
			p.progress(end)
		}
		return
	case strings.HasPrefix(w, "<") || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "++"):
		return
	}
	if i := strings.IndexByte(w, '('); i > 0 {
		w = w[:i]
	}
	if p.cur == nil {
		p.cur = &Segment{Start: start}
	}
	c := conf
	p.cur.Words = append(p.cur.Words, Word{Start: start, End: end, Word: w, Confidence: &c})
	p.cur.End = end
}

func (p *sphinxParser) flush() {
	if p.cur != nil && len(p.cur.Words) > 0 {
		words := make([]string, len(p.cur.Words))
		for i, w := range p.cur.Words {
			words[i] = w.Word
		}
		p.cur.Text = strings.Join(words, " ")
		p.segs = append(p.segs, *p.cur)
	}
	p.cur = nil
}

func (p *sphinxParser) done() []Segment {
	p.flush()
	return p.segs
}
