package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	stdimage "image"
	_ "image/gif"  // header sniffing for the pixel limit
	_ "image/jpeg" // header sniffing for the pixel limit
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/davidbyttow/govips/v2/vips"
	"golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff" // header sniffing for the pixel limit
	_ "golang.org/x/image/webp" // header sniffing for the pixel limit

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
)

// Defaults applied when the runner passes zero limits.
const (
	DefaultMaxPixels     = 50_000_000
	DefaultMaxInputBytes = 256 << 20
)

// maxCoord is libvips' VIPS_MAX_COORD: a side that never constrains a resize.
const maxCoord = 10_000_000

// Engine converts and compresses images with libvips. It is safe for
// concurrent use; libvips itself is started once per process.
type Engine struct {
	concurrency int
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine) error

// WithConcurrency sets the number of libvips worker threads per image
// (default: the number of CPUs). It applies to the first Engine created in
// the process only, because libvips is started once.
func WithConcurrency(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return fmt.Errorf("image engine concurrency must be at least 1, got %d", n)
		}
		e.concurrency = n
		return nil
	}
}

// New returns an image engine and starts libvips if it is not yet running.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{concurrency: runtime.NumCPU()}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	startup(e.concurrency)
	return e, nil
}

// Types lists the processor types this engine serves.
func (e *Engine) Types() []domain.ProcessorType {
	return []domain.ProcessorType{domain.ImageConversion, domain.ImageCompression}
}

var startOnce sync.Once

func startup(concurrency int) {
	startOnce.Do(func() {
		// govips logs every loader it registers at info level, and libvips
		// warns about every damaged input (which the job's error already
		// reports); only critical errors are worth a line in the service log.
		vips.LoggingSettings(func(domain string, _ vips.LogLevel, msg string) {
			slog.Error("libvips", "domain", domain, "msg", msg)
		}, vips.LogLevelCritical)
		// The operation cache keys on input buffers, which are different
		// for every job: it would only hold memory.
		vips.Startup(&vips.Config{ConcurrencyLevel: concurrency, MaxCacheFiles: 0, MaxCacheMem: 0, MaxCacheSize: 0})
	})
}

// format is an output format the engine writes.
type format struct {
	ext  string
	mime string
}

var formats = map[string]format{
	"jpg":  {"jpg", "image/jpeg"},
	"jpeg": {"jpeg", "image/jpeg"},
	"png":  {"png", "image/png"},
	"webp": {"webp", "image/webp"},
	"gif":  {"gif", "image/gif"},
	"tiff": {"tiff", "image/tiff"},
	"bmp":  {"bmp", "image/bmp"},
	"avif": {"avif", "image/avif"},
	// heic is not in the catalog yet; Debian's libheif has an HEVC encoder,
	// so the engine writes it for when the catalog adds it.
	"heic": {"heic", "image/heic"},
}

// sameFormat is the output format of a compression that keeps the input's
// format; types the engine can read but not write fall back to a sensible
// neighbour, and HEIC to JPEG while the catalog has no heic output. Its keys are also
// the input types the engine accepts at all: the catalog's, and not what
// libvips would hand to ImageMagick or other loaders it marks untrusted.
var sameFormat = map[vips.ImageType]string{
	vips.ImageTypeJPEG: "jpg",
	vips.ImageTypePNG:  "png",
	vips.ImageTypeWEBP: "webp",
	vips.ImageTypeGIF:  "gif",
	vips.ImageTypeTIFF: "tiff",
	vips.ImageTypeBMP:  "bmp",
	vips.ImageTypeAVIF: "avif",
	vips.ImageTypeHEIF: "jpg",
	vips.ImageTypeSVG:  "png",
	vips.ImageTypePDF:  "png",
}

// settings are the parameters of one run, resolved from the job's params.
type settings struct {
	format        string // "" = same as input
	quality       int
	width, height int
	maintain      bool
	shrinkOnly    bool // max_width/max_height: never enlarge
	lossless      bool
	strip         bool
	effort        bool
}

func resolve(t domain.ProcessorType, p map[string]any) (settings, error) {
	switch t {
	case domain.ImageConversion:
		s := settings{
			format:   strings.ToLower(domain.StringParam(p, "output_format", "")),
			quality:  domain.IntParam(p, "quality", 85),
			width:    domain.IntParam(p, "width", 0),
			height:   domain.IntParam(p, "height", 0),
			maintain: domain.BoolParam(p, "maintain_aspect", true),
			effort:   domain.BoolParam(p, "optimize", false),
		}
		s.strip = s.effort
		if s.format == "" {
			return s, domain.Failf(domain.CodeUnsupportedFormat, "image_conversion needs an output_format")
		}
		return s, nil
	case domain.ImageCompression:
		return settings{
			format:     strings.ToLower(domain.StringParam(p, "output_format", "")),
			quality:    domain.IntParam(p, "quality", 75),
			width:      domain.IntParam(p, "max_width", 0),
			height:     domain.IntParam(p, "max_height", 0),
			maintain:   true,
			shrinkOnly: true,
			lossless:   domain.BoolParam(p, "lossless", false),
			strip:      domain.BoolParam(p, "strip_metadata", true),
			effort:     true,
		}, nil
	}
	return settings{}, domain.Failf(domain.CodeUnsupportedFormat, "the image engine does not serve %s", t)
}

// Process converts or compresses the job's single input image.
func (e *Engine) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	if len(in.Files) != 1 {
		return nil, domain.Failf(domain.CodeProcessorError, "an image job takes exactly one input file, got %d", len(in.Files))
	}
	s, err := resolve(in.ProcessorType, in.Params)
	if err != nil {
		return nil, err
	}
	if s.format != "" {
		if _, ok := formats[s.format]; !ok {
			return nil, domain.Failf(domain.CodeUnsupportedFormat, "cannot write %q images", s.format)
		}
	}
	lim := in.Limits
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = DefaultMaxPixels
	}
	if lim.MaxInputBytes <= 0 {
		lim.MaxInputBytes = DefaultMaxInputBytes
	}
	progress := in.Progress
	if progress == nil {
		progress = func(int, string) {}
	}
	f := in.Files[0]

	typ, err := sniff(f.Path, lim)
	if err != nil {
		return nil, err
	}
	if s.format == "" {
		s.format = sameFormat[typ]
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// govips loads from memory only; the size limit above bounds the buffer.
	buf, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("read input %s: %w", f.Name, err)
	}
	if typ == vips.ImageTypeBMP {
		// libvips has no BMP loader of its own and would hand BMP to
		// ImageMagick; Go decodes it instead (its size was checked above).
		if buf, err = bmpToPNG(buf); err != nil {
			return nil, domain.Failf(domain.CodeCorruptInput, "the BMP cannot be decoded: %v", err)
		}
	}
	params := vips.NewImportParams()
	params.FailOnError.Set(true)
	hdr, err := vips.LoadImageFromBuffer(buf, params)
	if err != nil {
		return nil, loadError(err)
	}
	// The loaders are lazy: this is still the header, nothing is decoded.
	w, h := hdr.Width(), hdr.Height()
	hdr.Close()
	if px := int64(w) * int64(h); px > lim.MaxPixels {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the image is %d×%d pixels, more than the limit of %d", w, h, lim.MaxPixels)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// vips_thumbnail opens the image for sequential access and shrinks on
	// load where the format allows (JPEG, WebP), so memory stays at a few
	// scanlines of the source instead of the whole decoded image; without a
	// resize it is a pass-through that still autorotates.
	tw, th, size := target(s)
	img, err := vips.LoadThumbnailFromBuffer(buf, tw, th, vips.InterestingNone, size, params)
	if err != nil {
		return nil, loadError(err)
	}
	defer img.Close()
	progress(10, "image loaded")

	if s.strip {
		if err := img.RemoveMetadata(); err != nil {
			return nil, domain.Failf(domain.CodeProcessorError, "strip metadata: %v", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	progress(30, "encoding "+s.format)
	out, err := encode(img, s)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fm := formats[s.format]
	base := filepath.Base(strings.ReplaceAll(f.Name, "\\", "/"))
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "" || name == "." || name == "/" {
		name = "image"
	}
	name += "." + fm.ext
	path := filepath.Join(in.WorkDir, "out."+fm.ext)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return nil, fmt.Errorf("write output %s: %w", name, err)
	}
	progress(90, "encoded")
	return []workers.Output{{Path: path, Name: name, MimeType: fm.mime}}, nil
}

// sniff checks the input's size and type from its bytes and, where Go can
// read the header, its dimensions, before libvips sees it. This keeps a
// decompression bomb from reaching any loader that might allocate early
// (govips decodes BMP in Go, fully, before libvips).
func sniff(path string, lim workers.Limits) (vips.ImageType, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open input: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat input: %w", err)
	}
	if st.Size() == 0 {
		return 0, domain.Failf(domain.CodeUnsupportedFormat, "the file is empty")
	}
	if st.Size() > lim.MaxInputBytes {
		return 0, domain.Failf(domain.CodeInputTooLarge, "the file is %d bytes, more than the limit of %d", st.Size(), lim.MaxInputBytes)
	}
	head := make([]byte, 4096)
	n, err := io.ReadFull(fh, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("read input header: %w", err)
	}
	head = head[:n]
	typ := vips.DetermineImageType(head)
	if _, ok := sameFormat[typ]; !ok || typ != vips.ImageTypeBMP && !vips.IsTypeSupported(typ) {
		return 0, domain.Failf(domain.CodeUnsupportedFormat, "the file is not an image this engine can read")
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("rewind input: %w", err)
	}
	// DecodeConfig reads only the header. Formats Go cannot parse (AVIF,
	// HEIF, SVG, PDF) are checked on libvips' lazily loaded header instead.
	if cfg, _, err := stdimage.DecodeConfig(bufio.NewReader(fh)); err == nil {
		if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
			return 0, domain.Failf(domain.CodeInputTooLarge, "the image is %d×%d pixels, more than the limit of %d", cfg.Width, cfg.Height, lim.MaxPixels)
		}
	} else if typ == vips.ImageTypeBMP {
		return 0, domain.Failf(domain.CodeCorruptInput, "the BMP header cannot be read: %v", err)
	}
	return typ, nil
}

// target returns the thumbnail box and mode for the requested resize; no
// resize is a box no image exceeds, shrinking only.
func target(s settings) (w, h int, size vips.Size) {
	if s.width == 0 && s.height == 0 {
		return maxCoord, maxCoord, vips.SizeDown
	}
	w, h = s.width, s.height
	if w == 0 {
		w = maxCoord
	}
	if h == 0 {
		h = maxCoord
	}
	size = vips.SizeBoth
	switch {
	case s.shrinkOnly:
		size = vips.SizeDown
	case !s.maintain && s.width > 0 && s.height > 0:
		size = vips.SizeForce
	}
	return w, h, size
}

func encode(img *vips.ImageRef, s settings) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch s.format {
	case "jpg", "jpeg":
		if img.HasAlpha() {
			// JPEG has no alpha: flatten onto white, not libvips' black.
			if err := img.Flatten(&vips.Color{R: 255, G: 255, B: 255}); err != nil {
				return nil, encodeError(s.format, err)
			}
		}
		p := vips.NewJpegExportParams()
		p.Quality = s.quality
		p.StripMetadata = s.strip
		p.OptimizeCoding = true
		p.Interlace = s.effort
		out, _, err = img.ExportJpeg(p)
	case "png":
		p := vips.NewPngExportParams()
		p.StripMetadata = s.strip
		p.Compression = 6
		if s.effort {
			p.Compression = 9
			p.Filter = vips.PngFilterAll
		}
		out, _, err = img.ExportPng(p)
	case "webp":
		p := vips.NewWebpExportParams()
		p.Quality = s.quality
		p.Lossless = s.lossless
		p.StripMetadata = s.strip
		if s.effort {
			p.ReductionEffort = 6
		}
		out, _, err = img.ExportWebp(p)
	case "gif":
		p := vips.NewGifExportParams()
		p.StripMetadata = s.strip
		out, _, err = img.ExportGIF(p)
	case "tiff":
		p := vips.NewTiffExportParams()
		p.StripMetadata = s.strip
		p.Compression = vips.TiffCompressionDeflate
		out, _, err = img.ExportTiff(p)
	case "avif":
		p := vips.NewAvifExportParams()
		p.Quality = s.quality
		p.Lossless = s.lossless
		p.StripMetadata = s.strip
		out, _, err = img.ExportAvif(p)
	case "heic":
		p := vips.NewHeifExportParams()
		p.Quality = s.quality
		p.Lossless = s.lossless
		out, _, err = img.ExportHeif(p)
	case "bmp":
		// libvips writes BMP only through ImageMagick, which govips does not
		// expose and which is marked untrusted; Go's encoder writes it from
		// the decoded pixels instead (BMP carries no metadata to strip).
		out, err = encodeBMP(img)
	default:
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "cannot write %q images", s.format)
	}
	if err != nil {
		return nil, encodeError(s.format, err)
	}
	return out, nil
}

func bmpToPNG(src []byte) ([]byte, error) {
	dec, err := bmp.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&b, dec); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeBMP(img *vips.ImageRef) ([]byte, error) {
	p := vips.NewDefaultPNGExportParams()
	p.Compression = 0
	dec, err := img.ToImage(p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := bmp.Encode(&b, dec); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// loadError classifies an error from opening the image.
func loadError(err error) error {
	if errors.Is(err, vips.ErrUnsupportedImageFormat) {
		return domain.Failf(domain.CodeUnsupportedFormat, "the file is not an image this engine can read")
	}
	return domain.Failf(domain.CodeCorruptInput, "the image cannot be read: %s", vipsMessage(err))
}

// encodeError classifies an error from the pipeline's pull: libvips decodes
// lazily, so a truncated input surfaces while encoding, as a loader error.
func encodeError(format string, err error) error {
	msg := vipsMessage(err)
	lower := strings.ToLower(msg)
	for _, sign := range []string{"load", "premature end", "truncated", "corrupt", "read error", "vipsjpeg", "libspng", "png2vips", "gifload", "tiff2vips", "out of order", "not a "} {
		if strings.Contains(lower, sign) {
			return domain.Failf(domain.CodeCorruptInput, "the image cannot be decoded: %s", msg)
		}
	}
	return domain.Failf(domain.CodeProcessorError, "encode %s: %s", format, msg)
}

// vipsMessage keeps libvips' error lines on one line; govips appends a Go
// stack trace that has no place in a job's error message.
func vipsMessage(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\nStack:")
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	msg = strings.TrimRight(msg, "; ")
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}
