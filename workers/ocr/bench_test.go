package ocr_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/convilyn/turbolane/workers"
)

// BenchmarkVersusCLI recognises the same image with the engine (txt) and
// with the tesseract CLI run directly, and reports the engine's time as a
// multiple of the CLI's (x_cli). The engine runs tesseract with one OpenMP
// thread; the CLI runs with tesseract's default, as a user would.
//
//	go test -run '^$' -bench VersusCLI -benchtime 5x ./workers/ocr
func BenchmarkVersusCLI(b *testing.B) {
	e, dir := newEngine(b), b.TempDir()
	img := textImage(b, dir, "bench", "The quick brown fox jumps over the lazy dog 1234567890")
	var engine, cli time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := run(b, e, img, map[string]any{}, workers.Limits{}, nil); err != nil {
			b.Fatal(err)
		}
		engine += time.Since(start)
		start = time.Now()
		if out, err := exec.Command("tesseract", img, filepath.Join(dir, "cli"), "-l", "eng", "--psm", "3", "--dpi", "300", "txt").CombinedOutput(); err != nil {
			b.Fatalf("tesseract: %v: %s", err, out)
		}
		cli += time.Since(start)
	}
	b.ReportMetric(float64(engine.Milliseconds())/float64(b.N), "engine_ms/op")
	b.ReportMetric(float64(cli.Milliseconds())/float64(b.N), "cli_ms/op")
	b.ReportMetric(float64(engine)/float64(cli), "x_cli")
}
