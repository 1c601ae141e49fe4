package ocr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	stdimage "image"
	_ "image/gif"  // header sniffing for the pixel limit
	_ "image/jpeg" // header sniffing for the pixel limit
	_ "image/png"  // header sniffing for the pixel limit
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	_ "golang.org/x/image/bmp"  // header sniffing for the pixel limit
	_ "golang.org/x/image/tiff" // header sniffing for the pixel limit
	_ "golang.org/x/image/webp" // header sniffing for the pixel limit

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// Defaults applied when neither options nor limits set a value.
const (
	DefaultMaxPages      = 100
	DefaultMaxPixels     = 100_000_000
	DefaultMaxInputBytes = 256 << 20
	DefaultDPI           = 300
)

// Engine recognises text with tesseract. It is safe for concurrent use.
type Engine struct {
	tesseract, pdftoppm, vips string
	maxPages                  int
	threads                   int

	langOnce sync.Once
	langs    []string
	langErr  error
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine) error

// WithMaxPages bounds the pages of one PDF job (the service's
// --ocr-max-pages). Zero falls back to Limits.MaxPages, then 100.
func WithMaxPages(n int) Option {
	return func(e *Engine) error {
		if n < 0 {
			return fmt.Errorf("OCR page limit must not be negative, got %d", n)
		}
		e.maxPages = n
		return nil
	}
}

// WithThreads sets tesseract's OpenMP threads per page (default 1: the pool
// runs jobs in parallel already, and more threads per page oversubscribe
// the cores).
func WithThreads(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return fmt.Errorf("tesseract threads must be at least 1, got %d", n)
		}
		e.threads = n
		return nil
	}
}

// WithPrograms sets the tesseract, pdftoppm and vips programs (looked up in
// PATH when they have no slash); empty keeps the default.
func WithPrograms(tesseract, pdftoppm, vips string) Option {
	return func(e *Engine) error {
		if tesseract != "" {
			e.tesseract = tesseract
		}
		if pdftoppm != "" {
			e.pdftoppm = pdftoppm
		}
		if vips != "" {
			e.vips = vips
		}
		return nil
	}
}

// New returns an OCR engine.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{tesseract: "tesseract", pdftoppm: "pdftoppm", vips: "vips", threads: 1}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	configOnce.Do(api.DisableConfigDir)
	return e, nil
}

var configOnce sync.Once

// Types lists the processor types this engine serves.
func (e *Engine) Types() []domain.ProcessorType {
	return []domain.ProcessorType{domain.OCRProcessing}
}

// Languages lists the installed tesseract languages (tesseract
// --list-langs), without the osd pseudo-language. The list is read once per
// Engine; the catalog can show it.
func (e *Engine) Languages(ctx context.Context) ([]string, error) {
	e.langOnce.Do(func() { e.langs, e.langErr = Languages(ctx, e.tesseract) })
	return e.langs, e.langErr
}

// Languages runs `tesseract --list-langs` with the given program ("" is
// tesseract) and returns the installed languages, sorted, without osd.
func Languages(ctx context.Context, tesseract string) ([]string, error) {
	if tesseract == "" {
		tesseract = "tesseract"
	}
	var out bytes.Buffer
	if _, err := subprocess.Run(ctx, subprocess.Cmd{Path: tesseract, Args: []string{"--list-langs"}, Stdout: &out}); err != nil {
		return nil, fmt.Errorf("list tesseract languages: %w", err)
	}
	var langs []string
	for _, l := range strings.Split(out.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "List of") || l == "osd" {
			continue
		}
		langs = append(langs, l)
	}
	slices.Sort(langs)
	if len(langs) == 0 {
		return nil, errors.New("list tesseract languages: none installed")
	}
	return langs, nil
}

// kind is what an input really is, from its bytes.
type kind string

const (
	kindPNG  kind = "png"
	kindJPEG kind = "jpeg"
	kindGIF  kind = "gif"
	kindBMP  kind = "bmp"
	kindTIFF kind = "tiff"
	kindWEBP kind = "webp"
	kindPDF  kind = "pdf"
)

func sniff(head []byte) kind {
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return kindPNG
	case bytes.HasPrefix(head, []byte("\xff\xd8\xff")):
		return kindJPEG
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return kindGIF
	case bytes.HasPrefix(head, []byte("BM")):
		return kindBMP
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return kindTIFF
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return kindWEBP
	case bytes.Contains(head, []byte("%PDF-")):
		return kindPDF
	}
	return ""
}

// format is an output format: tesseract's config name, file name and type.
type format struct {
	config string
	suffix string
	mime   string
}

var formats = map[string]format{
	"txt":  {"txt", ".txt", "text/plain; charset=utf-8"},
	"hocr": {"hocr", ".hocr", "application/xhtml+xml"},
	"pdf":  {"pdf", "-searchable.pdf", "application/pdf"},
	"json": {"tsv", "-ocr.json", "application/json"},
}

// run is one job attempt.
type run struct {
	e        *Engine
	ctx      context.Context
	in       workers.Input
	lang     string
	dpi      int
	psm      int
	format   format
	fmtName  string
	progress func(int, string)
}

// Process recognises the text of one image or PDF.
func (e *Engine) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	if len(in.Files) != 1 {
		return nil, domain.Failf(domain.CodeProcessorError, "OCR takes exactly one input file, got %d", len(in.Files))
	}
	r := &run{e: e, ctx: ctx, in: in, progress: in.Progress,
		lang: domain.StringParam(in.Params, "language", "eng"),
		dpi:  domain.IntParam(in.Params, "dpi", DefaultDPI),
		psm:  domain.IntParam(in.Params, "psm", 3),
	}
	if r.progress == nil {
		r.progress = func(int, string) {}
	}
	r.fmtName = domain.StringParam(in.Params, "output_format", "txt")
	f, ok := formats[r.fmtName]
	if !ok {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "output_format %q is not supported; one of txt, hocr, pdf, json", r.fmtName)
	}
	r.format = f
	if err := r.checkLanguage(); err != nil {
		return nil, err
	}
	file := in.Files[0]
	k, err := r.sniffFile(file)
	if err != nil {
		return nil, err
	}
	var pages []page
	if k == kindPDF {
		pages, err = r.pdf(file)
	} else {
		pages, err = r.image(file, k)
	}
	if err != nil {
		return nil, err
	}
	return r.join(file, pages)
}

func (r *run) checkLanguage() error {
	installed, err := r.e.Languages(r.ctx)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(r.lang, "+") {
		if !slices.Contains(installed, l) {
			return domain.Failf(domain.CodeUnsupportedFormat, "language %q is not installed; installed: %s", l, strings.Join(installed, ", "))
		}
	}
	return nil
}

func (r *run) sniffFile(f workers.LocalFile) (kind, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		return "", fmt.Errorf("stat input %s: %w", f.Name, err)
	}
	if st.Size() == 0 {
		return "", domain.Failf(domain.CodeCorruptInput, "%s is empty", f.Name)
	}
	maxBytes := r.in.Limits.MaxInputBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxInputBytes
	}
	if st.Size() > maxBytes {
		return "", domain.Failf(domain.CodeInputTooLarge, "%s is %d bytes; the limit is %d", f.Name, st.Size(), maxBytes)
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return "", fmt.Errorf("open input %s: %w", f.Name, err)
	}
	defer fh.Close()
	head := make([]byte, 1024)
	n, _ := io.ReadFull(fh, head)
	k := sniff(head[:n])
	if k == "" {
		return "", domain.Failf(domain.CodeUnsupportedFormat, "%s is not an image or PDF that OCR reads (png, jpeg, tiff, bmp, webp, gif, pdf)", f.Name)
	}
	return k, nil
}

func (r *run) maxPixels() int64 {
	if r.in.Limits.MaxPixels > 0 {
		return r.in.Limits.MaxPixels
	}
	return DefaultMaxPixels
}

func (r *run) maxPages() int {
	switch {
	case r.e.maxPages > 0:
		return r.e.maxPages
	case r.in.Limits.MaxPages > 0:
		return r.in.Limits.MaxPages
	}
	return DefaultMaxPages
}

// page is one page's tesseract result: the output base (tesseract adds the
// extension) and its number.
type page struct {
	n    int
	base string
}

func (r *run) image(f workers.LocalFile, k kind) ([]page, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", f.Name, err)
	}
	cfg, _, err := stdimage.DecodeConfig(fh)
	_ = fh.Close()
	if err != nil {
		return nil, domain.Failf(domain.CodeCorruptInput, "%s is not a readable %s image: %v", f.Name, k, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > r.maxPixels() || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, domain.Failf(domain.CodeInputTooLarge, "%s is %d×%d pixels; the limit is %d pixels", f.Name, cfg.Width, cfg.Height, r.maxPixels())
	}
	if k == kindTIFF {
		frames, err := tiffFrames(f.Path, r.maxPages())
		if err != nil {
			return nil, domain.Failf(domain.CodeCorruptInput, "%s is not a readable TIFF image: %v", f.Name, err)
		}
		if len(frames) > r.maxPages() {
			return nil, domain.Failf(domain.CodeInputTooLarge, "%s has more than %d pages; OCR takes at most %d", f.Name, r.maxPages(), r.maxPages())
		}
		for i, fr := range frames {
			if fr.width*fr.height > r.maxPixels() {
				return nil, domain.Failf(domain.CodeInputTooLarge, "page %d of %s is %d×%d pixels; the limit is %d pixels", i+1, f.Name, fr.width, fr.height, r.maxPixels())
			}
		}
	}
	src := f.Path
	if k == kindGIF || k == kindWEBP {
		// Leptonica's gif and webp support depends on how it was built; a
		// png from libvips always works.
		r.progress(5, "converting "+string(k)+" to png")
		src = filepath.Join(r.in.WorkDir, "ocr-input.png")
		if _, err := subprocess.Run(r.ctx, subprocess.Cmd{
			Path: r.e.vips, Args: []string{"copy", f.Path + "[fail]", src},
			Dir: r.in.WorkDir, MemoryLimit: r.in.Limits.MemoryLimit,
		}); err != nil {
			if r.ctx.Err() != nil {
				return nil, r.ctx.Err()
			}
			return nil, domain.Failf(domain.CodeCorruptInput, "%s could not be decoded: %v", f.Name, err)
		}
	}
	r.progress(10, "recognising text")
	base := filepath.Join(r.in.WorkDir, "ocr-page-1")
	if err := r.tesseract(src, base, f.Name); err != nil {
		return nil, err
	}
	r.progress(90, "writing result")
	return []page{{1, base}}, nil
}

func (r *run) pdf(f workers.LocalFile) ([]page, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("open input %s: %w", f.Name, err)
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := readPDF(r.ctx, fh, conf)
	_ = fh.Close()
	if err != nil {
		if r.ctx.Err() != nil {
			return nil, r.ctx.Err()
		}
		return nil, pdfError(f.Name, err)
	}
	n := ctx.PageCount
	if n == 0 {
		return nil, domain.Failf(domain.CodeCorruptInput, "%s has no pages", f.Name)
	}
	if n > r.maxPages() {
		return nil, domain.Failf(domain.CodeInputTooLarge, "%s has %d pages; OCR takes at most %d", f.Name, n, r.maxPages())
	}
	dims, err := ctx.PageDims()
	if err != nil {
		return nil, domain.Failf(domain.CodeCorruptInput, "read page sizes of %s: %v", f.Name, err)
	}
	for i, d := range dims {
		w, h := int64(d.Width*float64(r.dpi)/72+1), int64(d.Height*float64(r.dpi)/72+1)
		if w*h > r.maxPixels() {
			return nil, domain.Failf(domain.CodeInputTooLarge, "page %d of %s would be %d×%d pixels at %d dpi; the limit is %d pixels", i+1, f.Name, w, h, r.dpi, r.maxPixels())
		}
	}
	pages := make([]page, 0, n)
	for i := 1; i <= n; i++ {
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		r.progress(100*(i-1)/n, fmt.Sprintf("page %d of %d", i, n))
		img := filepath.Join(r.in.WorkDir, fmt.Sprintf("raster-%d", i))
		num := strconv.Itoa(i)
		if _, err := subprocess.Run(r.ctx, subprocess.Cmd{
			Path: r.e.pdftoppm,
			Args: []string{"-r", strconv.Itoa(r.dpi), "-f", num, "-l", num, "-gray", "-png", "-singlefile", f.Path, img},
			Dir:  r.in.WorkDir, MemoryLimit: r.in.Limits.MemoryLimit,
		}); err != nil {
			if r.ctx.Err() != nil {
				return nil, r.ctx.Err()
			}
			return nil, domain.Failf(domain.CodeCorruptInput, "page %d of %s could not be rendered: %v", i, f.Name, err)
		}
		base := filepath.Join(r.in.WorkDir, fmt.Sprintf("ocr-page-%d", i))
		err := r.tesseract(img+".png", base, fmt.Sprintf("page %d of %s", i, f.Name))
		_ = os.Remove(img + ".png")
		if err != nil {
			return nil, err
		}
		pages = append(pages, page{i, base})
	}
	r.progress(95, "writing result")
	return pages, nil
}

// readPDF reads a PDF's structure; pdfcpu panics on some hostile inputs.
func readPDF(c context.Context, rs io.ReadSeeker, conf *model.Configuration) (ctx *model.Context, err error) {
	defer func() {
		if p := recover(); p != nil {
			ctx, err = nil, fmt.Errorf("pdfcpu: %v", p)
		}
	}()
	if ctx, err = pdfcpu.ReadWithContext(c, rs, conf); err != nil {
		return nil, err
	}
	return ctx, api.ValidateContext(ctx)
}

func pdfError(name string, err error) error {
	if errors.Is(err, pdfcpu.ErrWrongPassword) || strings.Contains(err.Error(), "correct password") {
		return domain.Failf(domain.CodeWrongPassword, "%s is encrypted; decrypt it first (pdf_operations decrypt)", name)
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return domain.Failf(domain.CodeCorruptInput, "%s is not a readable PDF: %s", name, msg)
}

// tesseract recognises src into base+extension.
func (r *run) tesseract(src, base, what string) error {
	threads := strconv.Itoa(r.e.threads)
	_, err := subprocess.Run(r.ctx, subprocess.Cmd{
		Path: r.e.tesseract,
		Args: []string{src, base, "-l", r.lang, "--psm", strconv.Itoa(r.psm), "--dpi", strconv.Itoa(r.dpi), r.format.config},
		Dir:  r.in.WorkDir, MemoryLimit: r.in.Limits.MemoryLimit,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + r.in.WorkDir, "LANG=C.UTF-8",
			"TMPDIR=" + r.in.WorkDir, "OMP_THREAD_LIMIT=" + threads},
	})
	if err == nil {
		return nil
	}
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	var ee *subprocess.ExitError
	if errors.As(err, &ee) {
		s := ee.Stderr
		if strings.Contains(s, "pixRead") || strings.Contains(s, "cannot be read") || strings.Contains(s, "Error in fopenReadStream") ||
			strings.Contains(s, "Unsupported image type") || strings.Contains(s, "truncated") {
			return domain.Failf(domain.CodeCorruptInput, "%s could not be read as an image: %v", what, err)
		}
	}
	return domain.Failf(domain.CodeProcessorError, "tesseract failed on %s: %v", what, err)
}

// baseName is the input's name without its extension.
func baseName(name string) string {
	b := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	if b == "" || b == "." || b == ".." {
		b = "document"
	}
	return b
}
