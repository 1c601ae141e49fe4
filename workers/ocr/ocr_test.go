package ocr_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/image/bmp"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/ocr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newEngine(t testing.TB, opts ...ocr.Option) *ocr.Engine {
	t.Helper()
	e, err := ocr.New(opts...)
	require.NoError(t, err)
	return e
}

func sh(t testing.TB, name string, args ...string) {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, b)
}

// textImage renders text black on white at 300 dpi with a margin, as png.
func textImage(t testing.TB, dir, name, text string) string {
	t.Helper()
	v, inv := filepath.Join(dir, name+".v"), filepath.Join(dir, name+"-inv.v")
	sh(t, "vips", "text", v, text, "--dpi", "300")
	sh(t, "vips", "invert", v, inv)
	out, err := exec.Command("vipsheader", "-f", "width", inv).Output()
	require.NoError(t, err)
	w, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	out, err = exec.Command("vipsheader", "-f", "height", inv).Output()
	require.NoError(t, err)
	h, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	p := filepath.Join(dir, name+".png")
	sh(t, "vips", "embed", inv, p, "60", "60", strconv.Itoa(w+120), strconv.Itoa(h+120), "--extend", "white")
	return p
}

// textPDF writes a PDF whose pages read "<word> page <i>" in large type,
// with ghostscript.
func textPDF(t testing.TB, dir string, words ...string) string {
	t.Helper()
	var prog strings.Builder
	prog.WriteString("%!PS\n/Helvetica findfont 28 scalefont setfont\n")
	for i, w := range words {
		fmt.Fprintf(&prog, "40 250 moveto (%s page %d) show showpage\n", w, i+1)
	}
	ps, out := filepath.Join(dir, "doc.ps"), filepath.Join(dir, "scan.pdf")
	require.NoError(t, os.WriteFile(ps, []byte(prog.String()), 0o600))
	sh(t, "gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-q", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a6", "-dFIXEDMEDIA", "-sOutputFile="+out, ps)
	return out
}

type progress struct {
	mu   sync.Mutex
	msgs []string
}

func (p *progress) add(_ int, msg string) { p.mu.Lock(); p.msgs = append(p.msgs, msg); p.mu.Unlock() }

func run(t testing.TB, e *ocr.Engine, path string, params map[string]any, lim workers.Limits, pr *progress) ([]workers.Output, error) {
	t.Helper()
	params["file_id"] = domain.NewFileID()
	p, _, err := domain.ValidateParams(domain.OCRProcessing, params)
	require.NoError(t, err)
	if pr == nil {
		pr = &progress{}
	}
	return e.Process(context.Background(), workers.Input{
		JobID: domain.NewJobID(), ProcessorType: domain.OCRProcessing, Params: p,
		Files:   []workers.LocalFile{{Path: path, Name: filepath.Base(path)}},
		WorkDir: t.TempDir(), Limits: lim, Progress: pr.add,
	})
}

func result(t testing.TB, outs []workers.Output) string {
	t.Helper()
	require.Len(t, outs, 1)
	b, err := os.ReadFile(outs[0].Path)
	require.NoError(t, err)
	return string(b)
}

func code(t testing.TB, err error) string {
	t.Helper()
	require.Error(t, err)
	var pe *domain.ProcessingError
	require.True(t, errors.As(err, &pe), "not a ProcessingError: %v", err)
	return pe.Code
}

func TestLanguages(t *testing.T) {
	langs, err := ocr.Languages(context.Background(), "")
	require.NoError(t, err)
	require.Contains(t, langs, "eng")
	require.NotContains(t, langs, "osd")
}

func TestImageFormats(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	src := textImage(t, dir, "hello", "Hello Turbo Lane")
	conv := func(ext string) string {
		p := filepath.Join(dir, "hello."+ext)
		sh(t, "vips", "copy", src, p)
		return p
	}
	bmpPath := filepath.Join(dir, "hello.bmp")
	{
		f, err := os.Open(src)
		require.NoError(t, err)
		img, err := png.Decode(f)
		_ = f.Close()
		require.NoError(t, err)
		var b bytes.Buffer
		require.NoError(t, bmp.Encode(&b, img))
		require.NoError(t, os.WriteFile(bmpPath, b.Bytes(), 0o600))
	}
	for name, path := range map[string]string{
		"png": src, "jpg": conv("jpg"), "tiff": conv("tif"), "webp": conv("webp"), "gif": conv("gif"), "bmp": bmpPath,
	} {
		t.Run(name, func(t *testing.T) {
			outs, err := run(t, e, path, map[string]any{}, workers.Limits{}, nil)
			require.NoError(t, err)
			require.Equal(t, "hello.txt", outs[0].Name)
			require.Contains(t, result(t, outs), "Hello Turbo Lane")
		})
	}
}

func TestImageOutputs(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	src := textImage(t, dir, "scan", "Invoice Number 4711")
	t.Run("hocr", func(t *testing.T) {
		outs, err := run(t, e, src, map[string]any{"output_format": "hocr"}, workers.Limits{}, nil)
		require.NoError(t, err)
		require.Equal(t, "scan.hocr", outs[0].Name)
		doc := result(t, outs)
		require.Contains(t, doc, `<html xmlns="http://www.w3.org/1999/xhtml"`)
		require.Contains(t, doc, "ocrx_word")
		require.Contains(t, doc, ">Invoice<")
		require.NotContains(t, doc, dir, "the hOCR must not show work paths")
	})
	t.Run("json", func(t *testing.T) {
		outs, err := run(t, e, src, map[string]any{"output_format": "json"}, workers.Limits{}, nil)
		require.NoError(t, err)
		require.Equal(t, "scan-ocr.json", outs[0].Name)
		var res ocr.Result
		require.NoError(t, json.Unmarshal([]byte(result(t, outs)), &res))
		require.Equal(t, "eng", res.Language)
		require.Len(t, res.Pages, 1)
		pg := res.Pages[0]
		require.Equal(t, 1, pg.Page)
		require.Positive(t, pg.Width)
		require.Equal(t, "Invoice Number 4711", pg.Text)
		require.Len(t, pg.Words, 3)
		for _, w := range pg.Words {
			require.Greater(t, w.Confidence, 50.0, "%+v", w)
			require.Positive(t, w.Width)
			require.Positive(t, w.Height)
			require.LessOrEqual(t, w.Left+w.Width, pg.Width)
		}
		require.Less(t, pg.Words[0].Left, pg.Words[1].Left)
	})
	t.Run("searchable pdf", func(t *testing.T) {
		outs, err := run(t, e, src, map[string]any{"output_format": "pdf"}, workers.Limits{}, nil)
		require.NoError(t, err)
		require.Equal(t, "scan-searchable.pdf", outs[0].Name)
		b, err := exec.Command("pdftotext", outs[0].Path, "-").CombinedOutput()
		require.NoError(t, err, string(b))
		require.Contains(t, strings.Join(strings.Fields(string(b)), " "), "Invoice Number 4711")
	})
}

func TestPDFPages(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	scan := textPDF(t, dir, "Apple", "Banana")
	t.Run("txt with progress per page", func(t *testing.T) {
		pr := &progress{}
		outs, err := run(t, e, scan, map[string]any{"dpi": 150}, workers.Limits{}, pr)
		require.NoError(t, err)
		txt := result(t, outs)
		a, b := strings.Index(txt, "Apple page 1"), strings.Index(txt, "Banana page 2")
		require.True(t, a >= 0 && b > a, "%q", txt)
		require.Contains(t, pr.msgs, "page 1 of 2")
		require.Contains(t, pr.msgs, "page 2 of 2")
	})
	t.Run("searchable pdf", func(t *testing.T) {
		outs, err := run(t, e, scan, map[string]any{"dpi": 150, "output_format": "pdf"}, workers.Limits{}, nil)
		require.NoError(t, err)
		n, err := api.PageCountFile(outs[0].Path)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		b, err := exec.Command("pdftotext", "-f", "2", "-l", "2", outs[0].Path, "-").CombinedOutput()
		require.NoError(t, err, string(b))
		require.Contains(t, strings.Join(strings.Fields(string(b)), " "), "Banana page 2")
	})
	t.Run("hocr", func(t *testing.T) {
		outs, err := run(t, e, scan, map[string]any{"dpi": 150, "output_format": "hocr"}, workers.Limits{}, nil)
		require.NoError(t, err)
		doc := result(t, outs)
		require.Equal(t, 2, strings.Count(doc, "class='ocr_page'"), doc)
		require.Contains(t, doc, "id='page_2'")
		require.Contains(t, doc, "id='word_2_1'")
		require.Contains(t, doc, "ppageno 1")
		require.Contains(t, doc, `image "scan.pdf page 2"`)
	})
	t.Run("page limit", func(t *testing.T) {
		_, err := run(t, newEngine(t, ocr.WithMaxPages(1)), scan, map[string]any{}, workers.Limits{}, nil)
		require.Equal(t, domain.CodeInputTooLarge, code(t, err))
		_, err = run(t, e, scan, map[string]any{}, workers.Limits{MaxPages: 1}, nil)
		require.Equal(t, domain.CodeInputTooLarge, code(t, err))
	})
	t.Run("page pixels", func(t *testing.T) {
		_, err := run(t, e, scan, map[string]any{"dpi": 600}, workers.Limits{MaxPixels: 1_000_000}, nil)
		require.Equal(t, domain.CodeInputTooLarge, code(t, err))
	})
}

// bombPNG is a valid PNG header claiming side×side pixels.
func bombPNG(side uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], side)
	binary.BigEndian.PutUint32(ihdr[4:], side)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestHostileInputs(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	good := textImage(t, dir, "good", "Hello")
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	scan := textPDF(t, dir, "Secret")
	locked := filepath.Join(dir, "locked.pdf")
	require.NoError(t, api.EncryptFile(scan, locked, model.NewAESConfiguration("pw", "pw", 256)))

	cases := []struct {
		name, path string
		params     map[string]any
		code       string
	}{
		{"zero length", write("empty.png", nil), map[string]any{}, domain.CodeCorruptInput},
		{"not an image", write("notes.png", []byte("plain text, not a picture\n")), map[string]any{}, domain.CodeUnsupportedFormat},
		{"bad header", write("bad.png", raw[:20]), map[string]any{}, domain.CodeCorruptInput},
		{"decompression bomb", write("bomb.png", bombPNG(100_000)), map[string]any{}, domain.CodeInputTooLarge},
		{"encrypted pdf", locked, map[string]any{}, domain.CodeWrongPassword},
		{"corrupt pdf", write("cut.pdf", []byte("%PDF-1.7\n1 0 obj\n<<")), map[string]any{}, domain.CodeCorruptInput},
		{"unknown language", good, map[string]any{"language": "xx"}, domain.CodeUnsupportedFormat},
		{"one unknown of two", good, map[string]any{"language": "eng+zz"}, domain.CodeUnsupportedFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, e, c.path, c.params, workers.Limits{}, nil)
			require.Equal(t, c.code, code(t, err), "%v", err)
		})
	}
	t.Run("truncated png", func(t *testing.T) {
		// The header is intact, so only the decoder notices: either the
		// job fails as corrupt_input or tesseract reads what is there.
		_, err := run(t, e, write("trunc.png", raw[:len(raw)/2]), map[string]any{}, workers.Limits{}, nil)
		if err != nil {
			require.Equal(t, domain.CodeCorruptInput, code(t, err), "%v", err)
		}
	})
}

func TestMemoryLimit(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	img := textImage(t, dir, "mem", "Bounded memory")
	outs, err := run(t, e, img, map[string]any{}, workers.Limits{MemoryLimit: 512 << 20}, nil)
	require.NoError(t, err)
	require.Contains(t, result(t, outs), "Bounded memory")
	// Far too little address space: tesseract cannot even load, and the
	// job fails with tesseract's message instead of hanging or crashing.
	_, err = run(t, e, img, map[string]any{}, workers.Limits{MemoryLimit: 32 << 20}, nil)
	require.Equal(t, domain.CodeProcessorError, code(t, err))
	require.ErrorContains(t, err, "tesseract")
}

func TestCancelBetweenPages(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	scan := textPDF(t, dir, "One", "Two", "Three")
	p, _, err := domain.ValidateParams(domain.OCRProcessing, map[string]any{"file_id": "f", "dpi": 100})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []string
	_, err = e.Process(ctx, workers.Input{
		Params: p, Files: []workers.LocalFile{{Path: scan, Name: "scan.pdf"}}, WorkDir: t.TempDir(),
		Progress: func(_ int, msg string) {
			seen = append(seen, msg)
			if msg == "page 2 of 3" {
				cancel()
			}
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotContains(t, seen, "page 3 of 3")
}

func TestMultiPageTIFF(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	one, two := textImage(t, dir, "one", "First sheet"), textImage(t, dir, "two", "Second sheet")
	joined := filepath.Join(dir, "joined.v")
	sh(t, "vips", "arrayjoin", one+" "+two, joined, "--across", "1")
	tif := filepath.Join(dir, "sheets.tif")
	// Two pages of the joined image's height each.
	out, err := exec.Command("vipsheader", "-f", "height", one).Output()
	require.NoError(t, err)
	sh(t, "vips", "tiffsave", joined, tif, "--page-height", strings.TrimSpace(string(out)))

	outs, err := run(t, e, tif, map[string]any{}, workers.Limits{}, nil)
	require.NoError(t, err)
	txt := result(t, outs)
	require.Contains(t, txt, "First sheet")
	require.Contains(t, txt, "Second sheet")

	_, err = run(t, newEngine(t, ocr.WithMaxPages(1)), tif, map[string]any{}, workers.Limits{}, nil)
	require.Equal(t, domain.CodeInputTooLarge, code(t, err), "%v", err)
}
