package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// textPNG renders text black on white at 300 dpi with vips.
func textPNG(t *testing.T, text string) []byte {
	t.Helper()
	dir := t.TempDir()
	v, inv, out := filepath.Join(dir, "t.v"), filepath.Join(dir, "i.v"), filepath.Join(dir, "t.png")
	run := func(args ...string) string {
		b, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	run("vips", "text", v, text, "--dpi", "300")
	run("vips", "invert", v, inv)
	w, _ := strconv.Atoi(run("vipsheader", "-f", "width", inv))
	h, _ := strconv.Atoi(run("vipsheader", "-f", "height", inv))
	run("vips", "embed", inv, out, "60", "60", strconv.Itoa(w+120), strconv.Itoa(h+120), "--extend", "white")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOCRThroughAPI recognises an image into JSON and a two-page PDF into
// a searchable PDF through the API, and sends a language that is not
// installed and a file that is no image.
func TestOCRThroughAPI(t *testing.T) {
	m := startServe(t)
	c := newClient(t, m.URL, "")

	img := c.upload("note.png", textPNG(t, "Turbo Lane reads this"))
	j := c.waitJob(c.createJob("ocr_processing", map[string]any{"file_id": img, "output_format": "json"}).JobID)
	if j.Status != "completed" || len(j.ResultFiles) != 1 || j.Progress != 100 {
		t.Fatalf("OCR json: %+v", j)
	}
	if rf := j.ResultFiles[0]; rf.FileName != "note-ocr.json" || rf.MimeType != "application/json" {
		t.Fatalf("result %+v", rf)
	}
	var res struct {
		Pages []struct {
			Text  string
			Words []struct {
				Text       string
				Confidence float64
				Width      int
			}
		}
	}
	if err := json.Unmarshal(c.download(j.ResultFiles[0].DownloadURL).Body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Pages) != 1 || res.Pages[0].Text != "Turbo Lane reads this" || len(res.Pages[0].Words) != 4 || res.Pages[0].Words[0].Confidence <= 0 {
		t.Fatalf("OCR json: %+v", res)
	}

	scan := c.upload("scan.pdf", gsPDF(t, "Scanned", 2))
	j = c.waitJob(c.createJob("ocr_processing", map[string]any{"file_id": scan, "output_format": "pdf", "dpi": 150}).JobID)
	if j.Status != "completed" || len(j.ResultFiles) != 1 || j.ResultFiles[0].FileName != "scan-searchable.pdf" {
		t.Fatalf("OCR pdf: %+v", j)
	}
	if got := pdfText(t, c.download(j.ResultFiles[0].DownloadURL).Body); got != "Scanned page 1 Scanned page 2" {
		t.Fatalf("searchable PDF text %q", got)
	}

	for _, tc := range []struct {
		name, file string
		params     map[string]any
		code       string
	}{
		{"language", img, map[string]any{"language": "klingon"}, "unsupported_format"},
		{"not an image", c.upload("fake.png", []byte("this is not a picture")), map[string]any{}, "unsupported_format"},
	} {
		tc.params["file_id"] = tc.file
		j := c.waitJob(c.createJob("ocr_processing", tc.params).JobID)
		if j.Status != "failed" || j.Error == nil || j.Error.Code != tc.code {
			t.Fatalf("%s: %+v", tc.name, j)
		}
	}
}

// TestMeasureOCRVersusCLI measures a job through the API (upload, create,
// poll, download) against the tesseract CLI on the same image in the same
// run, and logs the ratio. It only runs with TURBOLANE_MEASURE=1:
//
//	TURBOLANE_MEASURE=1 go test -run 'TestMeasure' -v ./cmd/turbolane
func TestMeasureOCRVersusCLI(t *testing.T) {
	if os.Getenv("TURBOLANE_MEASURE") == "" {
		t.Skip("set TURBOLANE_MEASURE=1 to measure")
	}
	m := startServe(t)
	c := newClient(t, m.URL, "")
	png := textPNG(t, "The quick brown fox jumps over the lazy dog 1234567890")
	path := filepath.Join(t.TempDir(), "in.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var api, cli time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		id := c.upload("in.png", png)
		j := c.waitJob(c.createJob("ocr_processing", map[string]any{"file_id": id}).JobID)
		if j.Status != "completed" {
			t.Fatalf("job %+v", j)
		}
		_ = c.download(j.ResultFiles[0].DownloadURL)
		api += time.Since(start)
		start = time.Now()
		if b, err := exec.Command("tesseract", path, filepath.Join(t.TempDir(), "out"), "-l", "eng", "txt").CombinedOutput(); err != nil {
			t.Fatalf("tesseract: %v: %s", err, b)
		}
		cli += time.Since(start)
	}
	t.Logf("ocr txt: API %.0f ms/job, tesseract CLI %.0f ms/run, ratio %.2f×", ms(api)/n, ms(cli)/n, float64(api)/float64(cli))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
