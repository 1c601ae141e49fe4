package pdf_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/pdf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newEngine(t testing.TB) *pdf.Engine {
	t.Helper()
	e, err := pdf.New()
	require.NoError(t, err)
	return e
}

// makePDF writes a PDF of n letter pages reading "<label> page <i>" with
// ghostscript, titled and authored through pdfmark.
func makePDF(t testing.TB, dir, label string, n int) workers.LocalFile {
	t.Helper()
	ps := filepath.Join(dir, label+".ps")
	prog := fmt.Sprintf(`%%!PS
[ /Title (%[1]s title) /Author (Turbo Lane tests) /DOCINFO pdfmark
/Helvetica findfont 24 scalefont setfont
1 1 %[2]d { /i exch def 72 700 moveto (%[1]s page ) show i 10 string cvs show showpage } for
`, label, n)
	require.NoError(t, os.WriteFile(ps, []byte(prog), 0o600))
	out := filepath.Join(dir, label+".pdf")
	cmd := exec.Command("gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-q", "-sDEVICE=pdfwrite", "-sPAPERSIZE=letter", "-dFIXEDMEDIA", "-sOutputFile="+out, ps)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	return local(t, out)
}

func local(t testing.TB, path string) workers.LocalFile {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return workers.LocalFile{Path: path, Name: filepath.Base(path), MimeType: "application/pdf", Size: st.Size()}
}

// run validates params the way the API does and runs the engine.
func run(t testing.TB, e *pdf.Engine, params map[string]any, lim workers.Limits, files ...workers.LocalFile) ([]workers.Output, error) {
	t.Helper()
	if len(files) == 1 {
		params["file_id"] = domain.NewFileID()
	} else {
		ids := make([]any, len(files))
		for i := range files {
			ids[i] = domain.NewFileID()
		}
		params["file_ids"] = ids
	}
	p, _, err := domain.ValidateParams(domain.PDFOperations, params)
	require.NoError(t, err)
	work := t.TempDir()
	var last int
	return e.Process(context.Background(), workers.Input{
		JobID: domain.NewJobID(), ProcessorType: domain.PDFOperations, Params: p,
		Files: files, WorkDir: work, Limits: lim,
		Progress: func(pct int, _ string) {
			if pct < last || pct > 100 {
				t.Errorf("progress went from %d to %d", last, pct)
			}
			last = pct
		},
	})
}

func pages(t testing.TB, path string) int {
	t.Helper()
	n, err := api.PageCountFile(path)
	require.NoError(t, err)
	return n
}

func text(t testing.TB, path string, args ...string) string {
	t.Helper()
	b, err := exec.Command("pdftotext", append(append(args, "-layout"), path, "-")...).CombinedOutput()
	require.NoError(t, err, string(b))
	return string(b)
}

func pdfinfo(t testing.TB, path string, args ...string) string {
	t.Helper()
	b, err := exec.Command("pdfinfo", append(args, path)...).CombinedOutput()
	require.NoError(t, err, string(b))
	return string(b)
}

// inOrder asserts that the words appear in s in this order.
func inOrder(t testing.TB, s string, words ...string) {
	t.Helper()
	at := 0
	for _, w := range words {
		i := strings.Index(s[at:], w)
		require.GreaterOrEqual(t, i, 0, "%q after offset %d in %q", w, at, s)
		at += i + len(w)
	}
}

func code(t testing.TB, err error) string {
	t.Helper()
	require.Error(t, err)
	var pe *domain.ProcessingError
	require.True(t, errors.As(err, &pe), "not a ProcessingError: %v", err)
	return pe.Code
}

func TestMergeKeepsOrder(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	a, b, c := makePDF(t, dir, "alpha", 2), makePDF(t, dir, "bravo", 1), makePDF(t, dir, "charlie", 1)
	outs, err := run(t, e, map[string]any{"operation": "merge"}, workers.Limits{}, b, a, c)
	require.NoError(t, err)
	require.Len(t, outs, 1)
	require.Equal(t, "bravo-merged.pdf", outs[0].Name)
	require.Equal(t, 4, pages(t, outs[0].Path))
	inOrder(t, text(t, outs[0].Path), "bravo page 1", "alpha page 1", "alpha page 2", "charlie page 1")

	_, err = run(t, e, map[string]any{"operation": "merge"}, workers.Limits{MaxPages: 3}, a, b, c)
	require.Equal(t, domain.CodeInputTooLarge, code(t, err))
}

func TestSplit(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 5)
	t.Run("every page", func(t *testing.T) {
		outs, err := run(t, e, map[string]any{"operation": "split"}, workers.Limits{}, in)
		require.NoError(t, err)
		require.Len(t, outs, 5)
		for i, o := range outs {
			require.Equal(t, fmt.Sprintf("doc-part-%d.pdf", i+1), o.Name)
			require.Equal(t, 1, pages(t, o.Path))
			require.Contains(t, text(t, o.Path), fmt.Sprintf("doc page %d", i+1))
		}
	})
	t.Run("ranges", func(t *testing.T) {
		outs, err := run(t, e, map[string]any{"operation": "split", "pages": "1-3, 4-"}, workers.Limits{}, in)
		require.NoError(t, err)
		require.Len(t, outs, 2)
		require.Equal(t, 3, pages(t, outs[0].Path))
		require.Equal(t, 2, pages(t, outs[1].Path))
		inOrder(t, text(t, outs[1].Path), "doc page 4", "doc page 5")
	})
	t.Run("beyond the document", func(t *testing.T) {
		_, err := run(t, e, map[string]any{"operation": "split", "pages": "1-3,4-9"}, workers.Limits{}, in)
		require.Equal(t, domain.CodeProcessorError, code(t, err))
		require.ErrorContains(t, err, "names page 9, but the document has 5 page(s)")
	})
}

func TestRotateSelectedPages(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 3)
	outs, err := run(t, e, map[string]any{"operation": "rotate", "angle": 270, "pages": "2-3"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, "doc-rotated.pdf", outs[0].Name)
	info := pdfinfo(t, outs[0].Path, "-f", "1", "-l", "3")
	require.Regexp(t, `Page +1 rot: +0\b`, info)
	require.Regexp(t, `Page +2 rot: +270\b`, info)
	require.Regexp(t, `Page +3 rot: +270\b`, info)

	_, err = run(t, e, map[string]any{"operation": "rotate", "pages": "x"}, workers.Limits{}, in)
	require.Equal(t, domain.CodeProcessorError, code(t, err))
	require.ErrorContains(t, err, "not a page number")
}

func TestExtractPages(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 4)
	outs, err := run(t, e, map[string]any{"operation": "extract_pages", "pages": "4,2"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, "doc-pages.pdf", outs[0].Name)
	require.Equal(t, 2, pages(t, outs[0].Path))
	inOrder(t, text(t, outs[0].Path), "doc page 4", "doc page 2")
}

func TestEncryptDecrypt(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "secret", 2)
	outs, err := run(t, e, map[string]any{"operation": "encrypt", "password": "s3cret!"}, workers.Limits{}, in)
	require.NoError(t, err)
	enc := outs[0]
	require.Equal(t, "secret-encrypted.pdf", enc.Name)
	// poppler cannot open it without the password; with it, it sees AES-256.
	_, err = exec.Command("pdftotext", enc.Path, "-").CombinedOutput()
	require.Error(t, err)
	require.Regexp(t, `Encrypted: +yes.*AES-256`, pdfinfo(t, enc.Path, "-upw", "s3cret!"))
	require.Contains(t, text(t, enc.Path, "-upw", "s3cret!"), "secret page 2")

	encFile := local(t, enc.Path)
	for name, params := range map[string]map[string]any{
		"decrypt wrong":  {"operation": "decrypt", "password": "guess"},
		"rotate without": {"operation": "rotate"},
		"info without":   {"operation": "info"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, e, params, workers.Limits{}, encFile)
			require.Equal(t, domain.CodeWrongPassword, code(t, err), "%v", err)
		})
	}

	_, err = run(t, e, map[string]any{"operation": "encrypt", "password": "other"}, workers.Limits{}, encFile)
	require.Equal(t, domain.CodeProcessorError, code(t, err))
	require.ErrorContains(t, err, "encrypted already")

	outs, err = run(t, e, map[string]any{"operation": "decrypt", "password": "s3cret!"}, workers.Limits{}, encFile)
	require.NoError(t, err)
	require.Equal(t, "secret-encrypted-decrypted.pdf", outs[0].Name)
	require.Regexp(t, `Encrypted: +no`, pdfinfo(t, outs[0].Path))
	require.Contains(t, text(t, outs[0].Path), "secret page 1")

	_, err = run(t, e, map[string]any{"operation": "decrypt", "password": "x"}, workers.Limits{}, in)
	require.Equal(t, domain.CodeProcessorError, code(t, err))
	require.ErrorContains(t, err, "not encrypted")
}

func TestWatermark(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 2)
	outs, err := run(t, e, map[string]any{"operation": "watermark", "text": "CONFIDENTIAL"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, "doc-watermarked.pdf", outs[0].Name)
	ok, err := api.HasWatermarksFile(outs[0].Path, nil)
	require.NoError(t, err)
	require.True(t, ok)
	// The watermark is set diagonally, so its letters come out in content
	// order only in raw mode.
	got := text(t, outs[0].Path, "-raw")
	require.Equal(t, 2, strings.Count(strings.Join(strings.Fields(got), ""), "CONFIDENTIAL"), got)
	inOrder(t, got, "doc page 1", "doc page 2")
}

func TestCompress(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	// A photo-like image (blurred noise, 1600×1600 px, about 200 dpi on
	// a letter page), stored losslessly by pdfcpu's image import.
	noise, png := filepath.Join(dir, "noise.v"), filepath.Join(dir, "noise.png")
	b, err := exec.Command("vips", "gaussnoise", noise, "1600", "1600", "--sigma", "30").CombinedOutput()
	require.NoError(t, err, string(b))
	b, err = exec.Command("vips", "gaussblur", noise, png, "1.5").CombinedOutput()
	require.NoError(t, err, string(b))
	imp, err := api.Import("f:Letter, pos:full", types.POINTS)
	require.NoError(t, err)
	scan := filepath.Join(dir, "scan.pdf")
	require.NoError(t, api.ImportImagesFile([]string{png}, scan, imp, nil))
	in := local(t, scan)

	outs, err := run(t, e, map[string]any{"operation": "compress"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, "scan-compressed.pdf", outs[0].Name)
	require.Equal(t, 1, pages(t, outs[0].Path))

	outs, err = run(t, e, map[string]any{"operation": "compress", "lossy": true, "quality": "screen"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, 1, pages(t, outs[0].Path))
	st, err := os.Stat(outs[0].Path)
	require.NoError(t, err)
	require.Less(t, st.Size(), in.Size/2, "lossy compression should at least halve a noisy scan")
}

func TestInfo(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "report", 3)
	outs, err := run(t, e, map[string]any{"operation": "info"}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Equal(t, "report-info.json", outs[0].Name)
	require.Equal(t, "application/json", outs[0].MimeType)
	raw, err := os.ReadFile(outs[0].Path)
	require.NoError(t, err)
	var info pdf.Info
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, 3, info.Pages)
	require.Equal(t, in.Size, info.SizeBytes)
	require.False(t, info.Encrypted)
	require.NotEmpty(t, info.Version)
	require.Equal(t, "report title", info.Title)
	require.Equal(t, "Turbo Lane tests", info.Author)
	require.Len(t, info.PageSizes, 3)
	require.Equal(t, pdf.PageSize{Page: 2, Width: 612, Height: 792}, info.PageSizes[1])
}

func TestHostileInputs(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	good := makePDF(t, dir, "good", 3)
	raw, err := os.ReadFile(good.Path)
	require.NoError(t, err)
	write := func(name string, data []byte) workers.LocalFile {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return local(t, p)
	}
	garbage := append([]byte("%PDF-1.7\n"), []byte(strings.Repeat("garbage ", 200))...)
	cases := []struct {
		name   string
		file   workers.LocalFile
		params map[string]any
		lim    workers.Limits
		code   string
	}{
		{"zero length", write("empty.pdf", nil), map[string]any{"operation": "info"}, workers.Limits{}, domain.CodeCorruptInput},
		{"not a pdf", write("notes.pdf", []byte("just some text, not a PDF\n")), map[string]any{"operation": "info"}, workers.Limits{}, domain.CodeUnsupportedFormat},
		{"truncated", write("cut.pdf", raw[:len(raw)/3]), map[string]any{"operation": "rotate"}, workers.Limits{}, domain.CodeCorruptInput},
		{"garbage after header", write("junk.pdf", garbage), map[string]any{"operation": "split"}, workers.Limits{}, domain.CodeCorruptInput},
		{"too many pages", good, map[string]any{"operation": "info"}, workers.Limits{MaxPages: 2}, domain.CodeInputTooLarge},
		{"too big", good, map[string]any{"operation": "info"}, workers.Limits{MaxInputBytes: 100}, domain.CodeInputTooLarge},
		{"output too big", good, map[string]any{"operation": "rotate"}, workers.Limits{MaxOutputBytes: 100}, domain.CodeInputTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, e, c.params, c.lim, c.file)
			require.Equal(t, c.code, code(t, err), "%v", err)
		})
	}
}

func TestCancelled(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 2)
	p, _, err := domain.ValidateParams(domain.PDFOperations, map[string]any{"operation": "rotate", "file_id": "f"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Process(ctx, workers.Input{Params: p, Files: []workers.LocalFile{in}, WorkDir: t.TempDir()})
	require.ErrorIs(t, err, context.Canceled)
}

func TestSelectedPagesAndBrokenMergeInput(t *testing.T) {
	e, dir := newEngine(t), t.TempDir()
	in := makePDF(t, dir, "doc", 3)
	outs, err := run(t, e, map[string]any{"operation": "watermark", "text": "DRAFT", "pages": "2"}, workers.Limits{}, in)
	require.NoError(t, err)
	for p, want := range map[string]int{"1": 0, "2": 1, "3": 0} {
		got := text(t, outs[0].Path, "-raw", "-f", p, "-l", p)
		require.Equal(t, want, strings.Count(strings.Join(strings.Fields(got), ""), "DRAFT"), "page %s: %q", p, got)
	}

	outs, err = run(t, e, map[string]any{"operation": "rotate", "angle": -90}, workers.Limits{}, in)
	require.NoError(t, err)
	require.Regexp(t, `Page +3 rot: +270\b`, pdfinfo(t, outs[0].Path, "-f", "1", "-l", "3"))

	broken := filepath.Join(dir, "broken.pdf")
	require.NoError(t, os.WriteFile(broken, []byte("%PDF-1.4\n1 0 obj <<"), 0o600))
	_, err = run(t, e, map[string]any{"operation": "merge"}, workers.Limits{}, in, local(t, broken))
	require.Equal(t, domain.CodeCorruptInput, code(t, err))
	require.ErrorContains(t, err, "broken.pdf")
}
