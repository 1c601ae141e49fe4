package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gsPDF makes a PDF of n pages reading "<label> page <i>" with ghostscript.
func gsPDF(t *testing.T, label string, n int) []byte {
	t.Helper()
	dir := t.TempDir()
	ps, out := filepath.Join(dir, "in.ps"), filepath.Join(dir, "out.pdf")
	prog := fmt.Sprintf("%%!PS\n/Helvetica findfont 28 scalefont setfont\n1 1 %d { /i exch def 40 250 moveto (%s page ) show i 10 string cvs show showpage } for\n", n, label)
	if err := os.WriteFile(ps, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-q", "-sDEVICE=pdfwrite",
		"-sPAPERSIZE=a6", "-dFIXEDMEDIA", "-sOutputFile="+out, ps).CombinedOutput(); err != nil {
		t.Fatalf("make PDF: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pdfText extracts the text of a downloaded PDF with pdftotext.
func pdfText(t *testing.T, data []byte, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("pdftotext", append(args, p, "-")...).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, b)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// TestPDFThroughAPI merges, splits, encrypts and inspects PDFs through the
// API, and sends a wrong password and a broken file.
func TestPDFThroughAPI(t *testing.T) {
	m := startServe(t)
	c := newClient(t, m.URL, "")
	var cat struct {
		Processors []struct {
			ProcessorType string
			Available     bool
		}
	}
	c.get("/api/v1/processors").json(t, &cat)
	for _, p := range cat.Processors {
		if p.ProcessorType == "pdf_operations" && !p.Available {
			t.Fatal("pdf_operations is not available in the catalog")
		}
	}

	a, b := c.upload("a.pdf", gsPDF(t, "Alpha", 2)), c.upload("b.pdf", gsPDF(t, "Bravo", 1))
	done := func(j jobJSON, results int) jobJSON {
		t.Helper()
		j = c.waitJob(j.JobID)
		if j.Status != "completed" || len(j.ResultFiles) != results || j.Progress != 100 {
			t.Fatalf("job %+v", j)
		}
		return j
	}

	merged := done(c.createJob("pdf_operations", map[string]any{"operation": "merge", "file_ids": []string{b, a}}), 1)
	if rf := merged.ResultFiles[0]; rf.FileName != "b-merged.pdf" || rf.MimeType != "application/pdf" {
		t.Fatalf("merge result %+v", rf)
	}
	if got := pdfText(t, c.download(merged.ResultFiles[0].DownloadURL).Body); got != "Bravo page 1 Alpha page 1 Alpha page 2" {
		t.Fatalf("merged text %q", got)
	}

	split := done(c.createJob("pdf_operations", map[string]any{"operation": "split", "file_id": a}), 2)
	for i, rf := range split.ResultFiles {
		want := fmt.Sprintf("a-part-%d.pdf", i+1)
		if rf.FileName != want {
			t.Fatalf("split result %d is %s, want %s", i, rf.FileName, want)
		}
		if got := pdfText(t, c.download(rf.DownloadURL).Body); got != fmt.Sprintf("Alpha page %d", i+1) {
			t.Fatalf("part %d text %q", i+1, got)
		}
	}

	enc := done(c.createJob("pdf_operations", map[string]any{"operation": "encrypt", "file_id": a, "password": "pw1"}), 1)
	locked := c.upload("locked.pdf", c.download(enc.ResultFiles[0].DownloadURL).Body)
	bad := c.waitJob(c.createJob("pdf_operations", map[string]any{"operation": "decrypt", "file_id": locked, "password": "nope"}).JobID)
	if bad.Status != "failed" || bad.Error == nil || bad.Error.Code != "wrong_password" {
		t.Fatalf("wrong password: %+v", bad)
	}
	dec := done(c.createJob("pdf_operations", map[string]any{"operation": "decrypt", "file_id": locked, "password": "pw1"}), 1)
	if got := pdfText(t, c.download(dec.ResultFiles[0].DownloadURL).Body); got != "Alpha page 1 Alpha page 2" {
		t.Fatalf("decrypted text %q", got)
	}

	info := done(c.createJob("pdf_operations", map[string]any{"operation": "info", "file_id": a}), 1)
	var doc struct {
		Pages     int  `json:"pages"`
		Encrypted bool `json:"encrypted"`
	}
	if rf := info.ResultFiles[0]; rf.FileName != "a-info.json" || rf.MimeType != "application/json" {
		t.Fatalf("info result %+v", rf)
	}
	if err := json.Unmarshal(c.download(info.ResultFiles[0].DownloadURL).Body, &doc); err != nil || doc.Pages != 2 || doc.Encrypted {
		t.Fatalf("info %+v (%v)", doc, err)
	}

	beyond := c.waitJob(c.createJob("pdf_operations", map[string]any{"operation": "extract_pages", "file_id": a, "pages": "2-5"}).JobID)
	if beyond.Status != "failed" || beyond.Error == nil || !strings.Contains(beyond.Error.Message, "names page 5") {
		t.Fatalf("page beyond the document: %+v", beyond)
	}
	broken := c.upload("broken.pdf", []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog"))
	j := c.waitJob(c.createJob("pdf_operations", map[string]any{"operation": "rotate", "file_id": broken}).JobID)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "corrupt_input" {
		t.Fatalf("broken PDF: %+v", j)
	}
}

// TestMeasurePDFVersusQPDF measures merge and rotate jobs through the API
// (upload, create, poll, download) against the qpdf CLI on the same inputs
// in the same run (there is no pdfcpu CLI on the machine), and logs the
// ratios. It only runs with TURBOLANE_MEASURE=1.
func TestMeasurePDFVersusQPDF(t *testing.T) {
	if os.Getenv("TURBOLANE_MEASURE") == "" {
		t.Skip("set TURBOLANE_MEASURE=1 to measure")
	}
	m := startServe(t)
	c := newClient(t, m.URL, "")
	dir := t.TempDir()
	x, y := gsPDF(t, "X", 40), gsPDF(t, "Y", 40)
	xp, yp := filepath.Join(dir, "x.pdf"), filepath.Join(dir, "y.pdf")
	for p, b := range map[string][]byte{xp: x, yp: y} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const n = 5
	for _, tc := range []struct {
		name   string
		params func(a, b string) map[string]any
		files  [][]byte
		qpdf   []string
	}{
		{"merge", func(a, b string) map[string]any {
			return map[string]any{"operation": "merge", "file_ids": []string{a, b}}
		},
			[][]byte{x, y}, []string{"--empty", "--pages", xp, yp, "--", filepath.Join(dir, "q.pdf")}},
		{"rotate", func(a, _ string) map[string]any {
			return map[string]any{"operation": "rotate", "file_id": a, "angle": 90}
		},
			[][]byte{x}, []string{xp, filepath.Join(dir, "q.pdf"), "--rotate=+90:1-z"}},
	} {
		var api, cli time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			ids := []string{"", ""}
			for k, f := range tc.files {
				ids[k] = c.upload(fmt.Sprintf("f%d.pdf", k), f)
			}
			j := c.waitJob(c.createJob("pdf_operations", tc.params(ids[0], ids[1])).JobID)
			if j.Status != "completed" {
				t.Fatalf("job %+v", j)
			}
			_ = c.download(j.ResultFiles[0].DownloadURL)
			api += time.Since(start)
			start = time.Now()
			if b, err := exec.Command("qpdf", tc.qpdf...).CombinedOutput(); err != nil {
				t.Fatalf("qpdf: %v: %s", err, b)
			}
			cli += time.Since(start)
		}
		t.Logf("pdf %s (40-page inputs): API %.0f ms/job, qpdf %.0f ms/run, ratio %.2f×", tc.name, ms(api)/n, ms(cli)/n, float64(api)/float64(cli))
	}
}
