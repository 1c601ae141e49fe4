package image_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	stdimage "image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/image/bmp"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/image"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newEngine(t testing.TB) *image.Engine {
	t.Helper()
	e, err := image.New()
	require.NoError(t, err)
	return e
}

// photo returns a JPEG of a smooth gradient with mild noise, so that it
// compresses like a photograph rather than like a flat colour.
func photo(t testing.TB, w, h, quality int) []byte {
	t.Helper()
	img := stdimage.NewRGBA(stdimage.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := uint8(r.IntN(24))
			img.Set(x, y, color.RGBA{uint8(x*255/w) + n, uint8(y*255/h) + n, uint8((x+y)*127/(w+h)) + n, 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}))
	return b.Bytes()
}

func writeFile(t testing.TB, dir, name string, data []byte) workers.LocalFile {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return workers.LocalFile{Path: p, Name: name, Size: int64(len(data))}
}

// run validates params the way the API does and runs the engine on one file.
func run(t testing.TB, e *image.Engine, pt domain.ProcessorType, params map[string]any, name string, data []byte, lim workers.Limits) ([]workers.Output, error) {
	t.Helper()
	params["file_id"] = domain.NewFileID()
	p, _, err := domain.ValidateParams(pt, params)
	require.NoError(t, err)
	dir := t.TempDir()
	f := writeFile(t, dir, name, data)
	return e.Process(context.Background(), workers.Input{
		JobID: domain.NewJobID(), ProcessorType: pt, Params: p,
		Files: []workers.LocalFile{f}, WorkDir: dir, Limits: lim,
	})
}

func readOutput(t testing.TB, outs []workers.Output) []byte {
	t.Helper()
	require.Len(t, outs, 1)
	b, err := os.ReadFile(outs[0].Path)
	require.NoError(t, err)
	return b
}

func dims(t testing.TB, b []byte) (vips.ImageType, int, int) {
	t.Helper()
	typ := vips.DetermineImageType(b)
	if typ == vips.ImageTypeBMP {
		cfg, err := bmp.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err)
		return typ, cfg.Width, cfg.Height
	}
	img, err := vips.NewImageFromBuffer(b)
	require.NoError(t, err)
	defer img.Close()
	return typ, img.Width(), img.Height()
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err)
	var pe *domain.ProcessingError
	require.True(t, errors.As(err, &pe), "want a ProcessingError, got %T: %v", err, err)
	require.Equal(t, code, pe.Code, "error: %v", err)
}

func TestJPEGToWebP(t *testing.T) {
	e := newEngine(t)
	var calls []int
	params := map[string]any{"output_format": "webp", "quality": 80}
	params["file_id"] = domain.NewFileID()
	p, _, err := domain.ValidateParams(domain.ImageConversion, params)
	require.NoError(t, err)
	dir := t.TempDir()
	f := writeFile(t, dir, "holiday.photo.jpg", photo(t, 640, 480, 90))
	outs, err := e.Process(context.Background(), workers.Input{
		ProcessorType: domain.ImageConversion, Params: p, Files: []workers.LocalFile{f}, WorkDir: dir,
		Progress: func(pct int, _ string) { calls = append(calls, pct) },
	})
	require.NoError(t, err)
	require.Equal(t, "holiday.photo.webp", outs[0].Name)
	require.Equal(t, "image/webp", outs[0].MimeType)
	require.Equal(t, dir, filepath.Dir(outs[0].Path), "outputs live in the work dir")
	typ, w, h := dims(t, readOutput(t, outs))
	require.Equal(t, vips.ImageTypeWEBP, typ)
	require.Equal(t, [2]int{640, 480}, [2]int{w, h})
	require.NotEmpty(t, calls)
	require.IsNonDecreasing(t, calls)
}

func TestOutputName(t *testing.T) {
	e := newEngine(t)
	src := photo(t, 16, 16, 90)
	for in, want := range map[string]string{
		"photo.JPG":         "photo.png",
		"archive.tar.jpg":   "archive.tar.png",
		"noext":             "noext.png",
		".jpg":              "image.png",
		`..\..\evil.jpg`:    "evil.png",
		"dir/../../evil.jp": "evil.png",
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "in")
		require.NoError(t, os.WriteFile(p, src, 0o600))
		outs, err := e.Process(context.Background(), workers.Input{
			ProcessorType: domain.ImageConversion, Params: map[string]any{"output_format": "png"},
			Files: []workers.LocalFile{{Path: p, Name: in}}, WorkDir: dir,
		})
		require.NoError(t, err, in)
		require.Equal(t, want, outs[0].Name, in)
		require.Equal(t, dir, filepath.Dir(outs[0].Path))
	}
}

func TestEveryOutputFormat(t *testing.T) {
	e := newEngine(t)
	src := photo(t, 120, 80, 90)
	for _, tc := range []struct {
		format string
		typ    vips.ImageType
		mime   string
	}{
		{"jpg", vips.ImageTypeJPEG, "image/jpeg"},
		{"jpeg", vips.ImageTypeJPEG, "image/jpeg"},
		{"png", vips.ImageTypePNG, "image/png"},
		{"webp", vips.ImageTypeWEBP, "image/webp"},
		{"gif", vips.ImageTypeGIF, "image/gif"},
		{"tiff", vips.ImageTypeTIFF, "image/tiff"},
		{"bmp", vips.ImageTypeBMP, "image/bmp"},
		{"avif", vips.ImageTypeAVIF, "image/avif"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			outs, err := run(t, e, domain.ImageConversion, map[string]any{"output_format": tc.format}, "in.jpg", src, workers.Limits{})
			require.NoError(t, err)
			require.Equal(t, "in."+tc.format, outs[0].Name)
			require.Equal(t, tc.mime, outs[0].MimeType)
			typ, w, h := dims(t, readOutput(t, outs))
			require.Equal(t, tc.typ, typ)
			require.Equal(t, [2]int{120, 80}, [2]int{w, h})
		})
	}
}

func TestInputFormats(t *testing.T) {
	e := newEngine(t)
	src := photo(t, 90, 60, 90)
	for _, format := range []string{"png", "webp", "gif", "tiff", "bmp", "avif"} {
		t.Run(format, func(t *testing.T) {
			outs, err := run(t, e, domain.ImageConversion, map[string]any{"output_format": format}, "in.jpg", src, workers.Limits{})
			require.NoError(t, err)
			in := readOutput(t, outs)
			// And back: the compression keeps the input's format.
			outs, err = run(t, e, domain.ImageCompression, map[string]any{}, "again."+format, in, workers.Limits{})
			require.NoError(t, err)
			typ, w, h := dims(t, readOutput(t, outs))
			require.Equal(t, vips.DetermineImageType(in), typ)
			require.Equal(t, [2]int{90, 60}, [2]int{w, h})
			require.Equal(t, "again."+format, outs[0].Name)
		})
	}
}

func TestHEICOutput(t *testing.T) {
	// Not in the catalog (ValidateParams refuses it), so straight to the engine.
	e := newEngine(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "a.jpg", photo(t, 64, 48, 90))
	outs, err := e.Process(context.Background(), workers.Input{
		ProcessorType: domain.ImageConversion, Params: map[string]any{"output_format": "heic", "quality": 60},
		Files: []workers.LocalFile{f}, WorkDir: dir,
	})
	require.NoError(t, err)
	require.Equal(t, "a.heic", outs[0].Name)
	typ, w, h := dims(t, readOutput(t, outs))
	require.Equal(t, vips.ImageTypeHEIF, typ)
	require.Equal(t, [2]int{64, 48}, [2]int{w, h})
}

func TestResize(t *testing.T) {
	e := newEngine(t)
	src := photo(t, 400, 300, 90)
	for _, tc := range []struct {
		name   string
		params map[string]any
		w, h   int
	}{
		{"fit inside keeps the aspect", map[string]any{"width": 200, "height": 200}, 200, 150},
		{"exact when aspect is not kept", map[string]any{"width": 200, "height": 200, "maintain_aspect": false}, 200, 200},
		{"width only", map[string]any{"width": 100}, 100, 75},
		{"height only", map[string]any{"height": 60}, 80, 60},
		{"enlarges on request", map[string]any{"width": 800}, 800, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.params["output_format"] = "png"
			outs, err := run(t, e, domain.ImageConversion, tc.params, "in.jpg", src, workers.Limits{})
			require.NoError(t, err)
			_, w, h := dims(t, readOutput(t, outs))
			require.Equal(t, [2]int{tc.w, tc.h}, [2]int{w, h})
		})
	}
}

func TestCompression(t *testing.T) {
	e := newEngine(t)
	src := photo(t, 1200, 900, 100)

	t.Run("a big JPEG gets smaller and stays a JPEG", func(t *testing.T) {
		outs, err := run(t, e, domain.ImageCompression, map[string]any{}, "big.jpg", src, workers.Limits{})
		require.NoError(t, err)
		out := readOutput(t, outs)
		require.Equal(t, "big.jpg", outs[0].Name)
		require.Less(t, len(out), len(src)/2, "q75 of a q100 photo")
		typ, w, h := dims(t, out)
		require.Equal(t, vips.ImageTypeJPEG, typ)
		require.Equal(t, [2]int{1200, 900}, [2]int{w, h})
	})
	t.Run("max_width only shrinks", func(t *testing.T) {
		outs, err := run(t, e, domain.ImageCompression, map[string]any{"max_width": 600}, "big.jpg", src, workers.Limits{})
		require.NoError(t, err)
		_, w, h := dims(t, readOutput(t, outs))
		require.Equal(t, [2]int{600, 450}, [2]int{w, h})

		outs, err = run(t, e, domain.ImageCompression, map[string]any{"max_width": 5000, "max_height": 5000}, "big.jpg", src, workers.Limits{})
		require.NoError(t, err)
		_, w, h = dims(t, readOutput(t, outs))
		require.Equal(t, [2]int{1200, 900}, [2]int{w, h})
	})
	t.Run("lossless webp", func(t *testing.T) {
		outs, err := run(t, e, domain.ImageCompression, map[string]any{"output_format": "webp", "lossless": true}, "big.jpg", src, workers.Limits{})
		require.NoError(t, err)
		typ, _, _ := dims(t, readOutput(t, outs))
		require.Equal(t, vips.ImageTypeWEBP, typ)
	})
}

// withExif inserts an APP1 Exif segment with an ImageDescription after the
// JPEG's SOI marker.
func withExif(jpg []byte, desc string) []byte {
	val := append([]byte(desc), 0)
	var tiff bytes.Buffer
	tiff.WriteString("II*\x00")
	_ = binary.Write(&tiff, binary.LittleEndian, uint32(8))
	_ = binary.Write(&tiff, binary.LittleEndian, uint16(1)) // one entry
	_ = binary.Write(&tiff, binary.LittleEndian, uint16(0x010e))
	_ = binary.Write(&tiff, binary.LittleEndian, uint16(2)) // ASCII
	_ = binary.Write(&tiff, binary.LittleEndian, uint32(len(val)))
	_ = binary.Write(&tiff, binary.LittleEndian, uint32(8+2+12+4))
	_ = binary.Write(&tiff, binary.LittleEndian, uint32(0)) // no next IFD
	tiff.Write(val)
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestStripMetadata(t *testing.T) {
	e := newEngine(t)
	const secret = "taken at 221B Baker Street"
	src := withExif(photo(t, 200, 150, 90), secret)
	in, err := vips.NewImageFromBuffer(src)
	require.NoError(t, err)
	require.True(t, in.HasExif(), "the crafted input carries Exif")
	in.Close()

	outs, err := run(t, e, domain.ImageCompression, map[string]any{}, "a.jpg", src, workers.Limits{})
	require.NoError(t, err)
	require.NotContains(t, string(readOutput(t, outs)), secret, "strip_metadata defaults to true")

	outs, err = run(t, e, domain.ImageCompression, map[string]any{"strip_metadata": false}, "a.jpg", src, workers.Limits{})
	require.NoError(t, err)
	require.Contains(t, string(readOutput(t, outs)), secret)

	outs, err = run(t, e, domain.ImageConversion, map[string]any{"output_format": "jpg", "optimize": true}, "a.jpg", src, workers.Limits{})
	require.NoError(t, err)
	require.NotContains(t, string(readOutput(t, outs)), secret, "optimize strips metadata")
}

// bombPNG is a 1 KiB PNG whose header claims w×h pixels.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(typ), data...)
		b.Write(c)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	// A zlib stream of zeros: would inflate to gigabytes if anyone tried.
	chunk("IDAT", []byte{0x78, 0x9c, 0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2, 0xa0, 0xf7, 0x4f, 0x6d, 0x0e, 0x37, 0xa0, 0x00, 0x00, 0x00})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestHostileInputs(t *testing.T) {
	e := newEngine(t)
	jpg := photo(t, 300, 200, 90)
	avif, err := run(t, e, domain.ImageConversion, map[string]any{"output_format": "avif"}, "x.jpg", jpg, workers.Limits{})
	require.NoError(t, err)
	avifBytes := readOutput(t, avif)

	for _, tc := range []struct {
		name   string
		file   string
		data   []byte
		limits workers.Limits
		code   string
	}{
		{"decompression bomb", "bomb.png", bombPNG(100000, 100000), workers.Limits{}, domain.CodeInputTooLarge},
		{"bomb under a small limit", "bomb.png", bombPNG(5000, 5000), workers.Limits{MaxPixels: 1_000_000}, domain.CodeInputTooLarge},
		{"pixel limit on a header only libvips reads", "x.avif", avifBytes, workers.Limits{MaxPixels: 1000}, domain.CodeInputTooLarge},
		{"byte limit", "x.jpg", jpg, workers.Limits{MaxInputBytes: 100}, domain.CodeInputTooLarge},
		{"truncated JPEG", "half.jpg", jpg[:len(jpg)/2], workers.Limits{}, domain.CodeCorruptInput},
		{"text named .jpg", "notes.jpg", []byte("just some words, not a picture\n"), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"zero length", "empty.png", nil, workers.Limits{}, domain.CodeUnsupportedFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, e, domain.ImageConversion, map[string]any{"output_format": "webp"}, tc.file, tc.data, tc.limits)
			requireCode(t, err, tc.code)
		})
	}
}

func TestCancelled(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	f := writeFile(t, dir, "a.jpg", photo(t, 64, 64, 90))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Process(ctx, workers.Input{ProcessorType: domain.ImageConversion, Params: map[string]any{"output_format": "png"}, Files: []workers.LocalFile{f}, WorkDir: dir})
	require.ErrorIs(t, err, context.Canceled)
}

// BenchmarkJPEGToWebP converts a 2084×1721 JPEG to WebP q80 in process. To
// compare with the CLI on the same machine, write the input out and time
// libvips itself:
//
//	go test ./workers/image -run '^$' -bench JPEGToWebP -benchtime 10x
//	vips copy in.jpg out.webp[Q=80]   # with: time, on the same in.jpg
//
// TURBOLANE_BENCH_JPEG=path writes the generated input to path for that.
func BenchmarkJPEGToWebP(b *testing.B) {
	e := newEngine(b)
	src := photo(b, 2084, 1721, 90)
	if p := os.Getenv("TURBOLANE_BENCH_JPEG"); p != "" {
		require.NoError(b, os.WriteFile(p, src, 0o600))
	}
	dir := b.TempDir()
	f := writeFile(b, dir, "in.jpg", src)
	in := workers.Input{ProcessorType: domain.ImageConversion, Params: map[string]any{"output_format": "webp", "quality": 80}, Files: []workers.LocalFile{f}, WorkDir: dir}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Process(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
