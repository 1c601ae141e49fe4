package document

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWarmVsCold converts the same small docx to PDF on a warm
// instance (through Process) and with a cold `soffice --convert-to` on an
// already initialised profile, in the same run, and reports both and their
// ratio. Run: go test -run '^$' -bench WarmVsCold -benchtime 5x ./workers/document/
func BenchmarkWarmVsCold(b *testing.B) {
	if _, err := exec.LookPath("soffice"); err != nil {
		b.Skip("LibreOffice (soffice) is not installed")
	}
	ctx := context.Background()
	e, err := New(ctx, WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			b.Error(err)
		}
	}()
	dir := b.TempDir()
	txt := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(txt, []byte("Warm or cold, this is the benchmark document.\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	process := func(path, name, target string) string {
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		outs, err := e.Process(ctx, inputForBench(b, path, name, fi.Size(), target))
		if err != nil {
			b.Fatal(err)
		}
		return outs[0].Path
	}
	docx := process(txt, "bench.txt", "docx")

	profile := "file://" + filepath.Join(dir, "cold-profile")
	cold := func() {
		out := b.TempDir()
		cmd := exec.Command("soffice", "-env:UserInstallation="+profile, "--headless", "--invisible", "--nologo",
			"--norestore", "--convert-to", "pdf", "--outdir", out, docx)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("cold soffice: %v: %s", err, msg)
		}
		if _, err := os.Stat(filepath.Join(out, filepath.Base(docx[:len(docx)-len(filepath.Ext(docx))])+".pdf")); err != nil {
			b.Fatalf("cold soffice wrote no PDF: %v", err)
		}
	}
	cold() // creates the profile: not what a cold start costs afterwards

	var warmTotal, coldTotal time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		process(docx, "bench.docx", "pdf")
		warmTotal += time.Since(start)
		start = time.Now()
		cold()
		coldTotal += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(warmTotal.Seconds()/n, "warm-s/op")
	b.ReportMetric(coldTotal.Seconds()/n, "cold-s/op")
	b.ReportMetric(coldTotal.Seconds()/warmTotal.Seconds(), "cold/warm")
}
