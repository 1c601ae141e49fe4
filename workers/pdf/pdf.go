package pdf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// Defaults applied when the runner passes zero limits.
const (
	DefaultMaxPages      = 2000
	DefaultMaxInputBytes = 256 << 20 // pdfcpu holds the whole document in memory
)

// Engine runs pdf_operations with pdfcpu. It is safe for concurrent use: every
// job gets its own pdfcpu configuration and model.
type Engine struct {
	ghostscript string
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine) error

// WithGhostscript sets the ghostscript program used for lossy compression
// (default "gs", looked up in PATH).
func WithGhostscript(path string) Option {
	return func(e *Engine) error {
		if path == "" {
			return errors.New("ghostscript path must not be empty")
		}
		e.ghostscript = path
		return nil
	}
}

var configOnce sync.Once

// New returns a PDF engine. pdfcpu's configuration directory is disabled
// for the whole process, so that pdfcpu neither reads nor writes a
// config.yml under the worker's home.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{ghostscript: "gs"}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	configOnce.Do(api.DisableConfigDir)
	return e, nil
}

// Types lists the processor types this engine serves.
func (e *Engine) Types() []domain.ProcessorType {
	return []domain.ProcessorType{domain.PDFOperations}
}

// job is one run: the input, its params and its limits.
type job struct {
	ctx      context.Context
	in       workers.Input
	password string
	maxPages int
	progress func(int, string)
}

// Process runs the operation named by params.operation.
func (e *Engine) Process(ctx context.Context, in workers.Input) (outs []workers.Output, err error) {
	if len(in.Files) == 0 {
		return nil, domain.Failf(domain.CodeProcessorError, "no input file")
	}
	j := &job{ctx: ctx, in: in, password: domain.StringParam(in.Params, "password", ""), maxPages: in.Limits.MaxPages, progress: in.Progress}
	if j.maxPages <= 0 {
		j.maxPages = DefaultMaxPages
	}
	if j.progress == nil {
		j.progress = func(int, string) {}
	}
	maxBytes := in.Limits.MaxInputBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInputBytes
	}
	for _, f := range in.Files {
		if err := sniff(f, maxBytes); err != nil {
			return nil, err
		}
	}
	// pdfcpu panics on some malformed inputs; a hostile file must fail its
	// job, not the worker.
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, domain.Failf(domain.CodeCorruptInput, "the PDF could not be processed: %v", r)
		}
	}()
	op := domain.StringParam(in.Params, "operation", "")
	switch op {
	case "merge":
		return e.merge(j)
	case "split":
		return e.split(j)
	case "rotate":
		return e.rotate(j)
	case "extract_pages":
		return e.extract(j)
	case "encrypt":
		return e.encrypt(j)
	case "decrypt":
		return e.decrypt(j)
	case "watermark":
		return e.watermark(j)
	case "compress":
		return e.compress(j)
	case "info":
		return e.info(j)
	}
	return nil, domain.Failf(domain.CodeUnsupportedFormat, "operation %q is not supported", op)
}

// sniff checks that f is a non-empty PDF within the size limit.
func sniff(f workers.LocalFile, maxBytes int64) error {
	st, err := os.Stat(f.Path)
	if err != nil {
		return fmt.Errorf("stat input %s: %w", f.Name, err)
	}
	if st.Size() == 0 {
		return domain.Failf(domain.CodeCorruptInput, "%s is empty", f.Name)
	}
	if st.Size() > maxBytes {
		return domain.Failf(domain.CodeInputTooLarge, "%s is %d bytes; the limit is %d", f.Name, st.Size(), maxBytes)
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("open input %s: %w", f.Name, err)
	}
	defer fh.Close()
	head := make([]byte, 1024)
	n, _ := io.ReadFull(fh, head)
	// The header may follow some junk, as readers allow (PDF 1.7 annex H).
	if !bytes.Contains(head[:n], []byte("%PDF-")) {
		return domain.Failf(domain.CodeUnsupportedFormat, "%s is not a PDF", f.Name)
	}
	return nil
}

// conf is a fresh pdfcpu configuration for cmd, with the job's password.
func (j *job) conf(cmd model.CommandMode) *model.Configuration {
	c := model.NewDefaultConfiguration()
	c.Cmd = cmd
	c.UserPW, c.OwnerPW = j.password, j.password
	c.ValidationMode = model.ValidationRelaxed
	return c
}

// read reads and validates one input with conf and checks the page limit.
func (j *job) read(f workers.LocalFile, conf *model.Configuration) (*model.Context, error) {
	if err := j.ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", f.Name, err)
	}
	defer fh.Close()
	ctx, err := readContext(j.ctx, fh, conf)
	if err != nil {
		if j.ctx.Err() != nil {
			return nil, j.ctx.Err()
		}
		return nil, readError(f.Name, err)
	}
	if ctx.PageCount > j.maxPages {
		return nil, domain.Failf(domain.CodeInputTooLarge, "%s has %d pages; the limit is %d", f.Name, ctx.PageCount, j.maxPages)
	}
	if ctx.PageCount == 0 {
		return nil, domain.Failf(domain.CodeCorruptInput, "%s has no pages", f.Name)
	}
	return ctx, nil
}

// readContext is api.ReadValidateAndOptimize with a Go context, so that
// reading a huge or hostile file stops when the job is cancelled or times
// out.
func readContext(c context.Context, rs io.ReadSeeker, conf *model.Configuration) (*model.Context, error) {
	ctx, err := pdfcpu.ReadWithContext(c, rs, conf)
	if err != nil {
		return nil, err
	}
	if err := api.ValidateContext(ctx); err != nil {
		return nil, err
	}
	if conf.Optimize || conf.Cmd == model.OPTIMIZE {
		if err := api.OptimizeContext(ctx); err != nil {
			return nil, err
		}
	}
	if err := pdfcpu.CacheFormFonts(ctx); err != nil {
		return nil, err
	}
	return ctx, nil
}

// readError maps a pdfcpu read failure to a job error.
func readError(name string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "already encrypted"):
		return domain.Failf(domain.CodeProcessorError, "%s is encrypted already; decrypt it first", name)
	case strings.Contains(msg, "file is not encrypted"):
		return domain.Failf(domain.CodeProcessorError, "%s is not encrypted", name)
	case errors.Is(err, pdfcpu.ErrWrongPassword) || strings.Contains(msg, "correct password"):
		return domain.Failf(domain.CodeWrongPassword, "%s is encrypted and the password is missing or wrong", name)
	case errors.Is(err, pdfcpu.ErrUnknownEncryption) || strings.Contains(msg, "unsupported encryption"):
		return domain.Failf(domain.CodeUnsupportedFormat, "%s uses an encryption pdfcpu does not support: %v", name, err)
	}
	return domain.Failf(domain.CodeCorruptInput, "%s is not a readable PDF: %v", name, trim(msg))
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// base is the input's name without its extension, safe for a file name.
func base(name string) string {
	b := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	b = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, b)
	if b == "" || b == "." || b == ".." {
		b = "document"
	}
	return b
}

// write writes ctx to name inside the work dir and checks the output limit.
func (j *job) write(ctx *model.Context, name string) (workers.Output, error) {
	path := filepath.Join(j.in.WorkDir, name)
	f, err := os.Create(path)
	if err != nil {
		return workers.Output{}, fmt.Errorf("create output %s: %w", name, err)
	}
	if err := api.WriteContext(ctx, f); err != nil {
		_ = f.Close()
		return workers.Output{}, fmt.Errorf("write output %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return workers.Output{}, fmt.Errorf("close output %s: %w", name, err)
	}
	return j.output(path, name, "application/pdf")
}

func (j *job) output(path, name, mime string) (workers.Output, error) {
	if max := j.in.Limits.MaxOutputBytes; max > 0 {
		st, err := os.Stat(path)
		if err != nil {
			return workers.Output{}, fmt.Errorf("stat output %s: %w", name, err)
		}
		if st.Size() > max {
			return workers.Output{}, domain.Failf(domain.CodeInputTooLarge, "the result %s would be %d bytes; the limit is %d", name, st.Size(), max)
		}
	}
	return workers.Output{Path: path, Name: name, MimeType: mime}, nil
}

func (e *Engine) merge(j *job) ([]workers.Output, error) {
	files := j.in.Files
	conf := j.conf(model.MERGECREATE)
	conf.CreateBookmarks = false
	j.progress(0, fmt.Sprintf("reading 1 of %d", len(files)))
	dest, err := j.read(files[0], conf)
	if err != nil {
		return nil, err
	}
	dest.EnsureVersionForWriting()
	total := dest.PageCount
	for i, f := range files[1:] {
		j.progress(90*(i+1)/len(files), fmt.Sprintf("merging %d of %d", i+2, len(files)))
		src, err := j.read(f, j.conf(model.MERGECREATE))
		if err != nil {
			return nil, err
		}
		total += src.PageCount
		if total > j.maxPages {
			return nil, domain.Failf(domain.CodeInputTooLarge, "the merged PDF would have %d pages; the limit is %d", total, j.maxPages)
		}
		if err := pdfcpu.MergeXRefTables(f.Name, src, dest, false, false); err != nil {
			return nil, fmt.Errorf("merge %s: %w", f.Name, err)
		}
	}
	if err := api.OptimizeContext(dest); err != nil {
		return nil, fmt.Errorf("optimize merged PDF: %w", err)
	}
	j.progress(95, "writing")
	out, err := j.write(dest, base(files[0].Name)+"-merged.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func (e *Engine) split(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.SPLIT))
	if err != nil {
		return nil, err
	}
	var parts []pageRange
	if sel := domain.StringParam(j.in.Params, "pages", ""); sel != "" {
		if parts, err = parsePages(sel, ctx.PageCount); err != nil {
			return nil, err
		}
	} else {
		for p := 1; p <= ctx.PageCount; p++ {
			parts = append(parts, pageRange{p, p})
		}
	}
	outs := make([]workers.Output, 0, len(parts))
	for i, r := range parts {
		if err := j.ctx.Err(); err != nil {
			return nil, err
		}
		j.progress(100*i/len(parts), fmt.Sprintf("writing part %d of %d", i+1, len(parts)))
		part, err := pdfcpu.ExtractPages(ctx, flatten([]pageRange{r}), false)
		if err != nil {
			return nil, fmt.Errorf("extract pages %d-%d: %w", r.from, r.thru, err)
		}
		out, err := j.write(part, fmt.Sprintf("%s-part-%d.pdf", base(f.Name), i+1))
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// selection is the job's pages param as a set, every page when empty.
func (j *job) selection(n int) (types.IntSet, error) {
	rs, err := parsePages(domain.StringParam(j.in.Params, "pages", ""), n)
	if err != nil {
		return nil, err
	}
	set := types.IntSet{}
	for _, p := range flatten(rs) {
		set[p] = true
	}
	return set, nil
}

func (e *Engine) rotate(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.ROTATE))
	if err != nil {
		return nil, err
	}
	pages, err := j.selection(ctx.PageCount)
	if err != nil {
		return nil, err
	}
	angle := domain.IntParam(j.in.Params, "angle", 90)
	j.progress(40, fmt.Sprintf("rotating %d page(s) by %d°", len(pages), angle))
	if err := pdfcpu.RotatePages(ctx, pages, angle); err != nil {
		return nil, fmt.Errorf("rotate pages: %w", err)
	}
	j.progress(70, "writing")
	out, err := j.write(ctx, base(f.Name)+"-rotated.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func (e *Engine) extract(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.COLLECT))
	if err != nil {
		return nil, err
	}
	rs, err := parsePages(domain.StringParam(j.in.Params, "pages", ""), ctx.PageCount)
	if err != nil {
		return nil, err
	}
	j.progress(40, "extracting pages")
	dest, err := pdfcpu.ExtractPages(ctx, flatten(rs), false)
	if err != nil {
		return nil, fmt.Errorf("extract pages: %w", err)
	}
	j.progress(70, "writing")
	out, err := j.write(dest, base(f.Name)+"-pages.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func (e *Engine) encrypt(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	// The new password is also the one the input is read with: an input
	// encrypted already fails with wrong_password unless it is the same.
	conf := j.conf(model.ENCRYPT)
	conf.EncryptUsingAES, conf.EncryptKeyLength = true, 256
	ctx, err := j.read(f, conf)
	if err != nil {
		return nil, err
	}
	j.progress(50, "encrypting (AES-256)")
	out, err := j.write(ctx, base(f.Name)+"-encrypted.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func (e *Engine) decrypt(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.DECRYPT))
	if err != nil {
		return nil, err
	}
	j.progress(50, "decrypting")
	out, err := j.write(ctx, base(f.Name)+"-decrypted.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func (e *Engine) watermark(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	conf := j.conf(model.ADDWATERMARKS)
	conf.OptimizeDuplicateContentStreams = false
	ctx, err := j.read(f, conf)
	if err != nil {
		return nil, err
	}
	pages, err := j.selection(ctx.PageCount)
	if err != nil {
		return nil, err
	}
	text := domain.StringParam(j.in.Params, "text", "")
	wm, err := api.TextWatermark(text, "font:Helvetica, points:48, scale:0.8 rel, rot:45, fillcolor:0.5 0.5 0.5, opacity:0.35", false, false, types.POINTS)
	if err != nil {
		return nil, domain.Failf(domain.CodeProcessorError, "invalid watermark: %v", err)
	}
	j.progress(40, fmt.Sprintf("watermarking %d page(s)", len(pages)))
	if err := pdfcpu.AddWatermarks(ctx, pages, wm); err != nil {
		return nil, fmt.Errorf("add watermark: %w", err)
	}
	j.progress(70, "writing")
	out, err := j.write(ctx, base(f.Name)+"-watermarked.pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

// gsSettings are ghostscript's -dPDFSETTINGS presets, by quality param.
var gsSettings = map[string]string{"screen": "/screen", "ebook": "/ebook", "printer": "/printer", "prepress": "/prepress"}

func (e *Engine) compress(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.OPTIMIZE))
	if err != nil {
		return nil, err
	}
	name := base(f.Name) + "-compressed.pdf"
	if !domain.BoolParam(j.in.Params, "lossy", false) {
		j.progress(60, "writing optimized PDF")
		out, err := j.write(ctx, name)
		if err != nil {
			return nil, err
		}
		return []workers.Output{out}, nil
	}
	// ghostscript gets a decrypted, optimized copy, so that a password never
	// appears on its command line.
	j.progress(20, "preparing for ghostscript")
	src := filepath.Join(j.in.WorkDir, "gs-input.pdf")
	ctx.Cmd = model.DECRYPT
	ctx.Encrypt, ctx.E = nil, nil
	if _, err := j.write(ctx, filepath.Base(src)); err != nil {
		return nil, err
	}
	setting := gsSettings[domain.StringParam(j.in.Params, "quality", "ebook")]
	if setting == "" {
		setting = "/ebook"
	}
	dst := filepath.Join(j.in.WorkDir, name)
	j.progress(40, "downsampling images (ghostscript "+setting+")")
	_, err = subprocess.Run(j.ctx, subprocess.Cmd{
		Path: e.ghostscript,
		Args: []string{"-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=pdfwrite",
			"-dCompatibilityLevel=1.5", "-dPDFSETTINGS=" + setting,
			"-sOutputFile=" + dst, src},
		Dir: j.in.WorkDir, MemoryLimit: j.in.Limits.MemoryLimit,
	})
	if err != nil {
		if j.ctx.Err() != nil {
			return nil, j.ctx.Err()
		}
		return nil, domain.Failf(domain.CodeProcessorError, "ghostscript failed: %v", err)
	}
	_ = os.Remove(src)
	out, err := j.output(dst, name, "application/pdf")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

// Info is the JSON result of the info operation.
type Info struct {
	Pages            int        `json:"pages"`
	SizeBytes        int64      `json:"size_bytes"`
	Version          string     `json:"pdf_version"`
	Encrypted        bool       `json:"encrypted"`
	Title            string     `json:"title,omitempty"`
	Author           string     `json:"author,omitempty"`
	Subject          string     `json:"subject,omitempty"`
	Keywords         []string   `json:"keywords,omitempty"`
	Creator          string     `json:"creator,omitempty"`
	Producer         string     `json:"producer,omitempty"`
	CreationDate     string     `json:"creation_date,omitempty"`
	ModificationDate string     `json:"modification_date,omitempty"`
	Tagged           bool       `json:"tagged"`
	Linearized       bool       `json:"linearized"`
	Form             bool       `json:"form"`
	Bookmarks        bool       `json:"bookmarks"`
	Watermarked      bool       `json:"watermarked"`
	Signatures       bool       `json:"signatures"`
	Attachments      int        `json:"attachments"`
	PageSizes        []PageSize `json:"page_sizes"`
}

// PageSize is one page's media box in PDF points (1/72 inch), rotation
// applied.
type PageSize struct {
	Page   int     `json:"page"`
	Width  float64 `json:"width_pt"`
	Height float64 `json:"height_pt"`
}

func (e *Engine) info(j *job) ([]workers.Output, error) {
	f := j.in.Files[0]
	ctx, err := j.read(f, j.conf(model.LISTINFO))
	if err != nil {
		return nil, err
	}
	j.progress(50, "reading document information")
	pi, err := pdfcpu.Info(ctx, f.Name, nil, false)
	if err != nil {
		return nil, domain.Failf(domain.CodeCorruptInput, "read document information of %s: %v", f.Name, trim(err.Error()))
	}
	st, err := os.Stat(f.Path)
	if err != nil {
		return nil, fmt.Errorf("stat input %s: %w", f.Name, err)
	}
	info := Info{
		Pages: ctx.PageCount, SizeBytes: st.Size(), Version: pi.Version, Encrypted: pi.Encrypted,
		Title: pi.Title, Author: pi.Author, Subject: pi.Subject, Keywords: pi.Keywords,
		Creator: pi.Creator, Producer: pi.Producer, CreationDate: pi.CreationDate, ModificationDate: pi.ModificationDate,
		Tagged: pi.Tagged, Linearized: pi.Linearized, Form: pi.Form, Bookmarks: pi.Outlines,
		Watermarked: pi.Watermarked, Signatures: pi.Signatures, Attachments: len(pi.Attachments),
	}
	dims, err := ctx.PageDims()
	if err != nil {
		return nil, domain.Failf(domain.CodeCorruptInput, "read page sizes of %s: %v", f.Name, trim(err.Error()))
	}
	for i, d := range dims {
		info.PageSizes = append(info.PageSizes, PageSize{Page: i + 1, Width: round2(d.Width), Height: round2(d.Height)})
	}
	name := base(f.Name) + "-info.json"
	path := filepath.Join(j.in.WorkDir, name)
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode info: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write info: %w", err)
	}
	out, err := j.output(path, name, "application/json")
	if err != nil {
		return nil, err
	}
	return []workers.Output{out}, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
