package pdf_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/convilyn/turbolane/workers"
)

// BenchmarkVersusQPDF runs merge and rotate on the same 40-page inputs with
// the engine (pdfcpu in process) and with the qpdf CLI, and reports the
// engine's time as a multiple of qpdf's (x_qpdf; there is no pdfcpu CLI on
// the machine to compare with).
//
//	go test -run '^$' -bench VersusQPDF -benchtime 10x ./workers/pdf
func BenchmarkVersusQPDF(b *testing.B) {
	if _, err := exec.LookPath("qpdf"); err != nil {
		b.Skip("qpdf is not installed")
	}
	e, dir := newEngine(b), b.TempDir()
	x, y := makePDF(b, dir, "x", 40), makePDF(b, dir, "y", 40)
	cases := []struct {
		name   string
		params func() map[string]any
		files  []workers.LocalFile
		qpdf   []string
	}{
		{"merge", func() map[string]any { return map[string]any{"operation": "merge"} }, []workers.LocalFile{x, y},
			[]string{"--empty", "--pages", x.Path, y.Path, "--", filepath.Join(dir, "q-merged.pdf")}},
		{"rotate", func() map[string]any { return map[string]any{"operation": "rotate", "angle": 90} }, []workers.LocalFile{x},
			[]string{x.Path, filepath.Join(dir, "q-rotated.pdf"), "--rotate=+90:1-z"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var engine, cli time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := run(b, e, c.params(), workers.Limits{}, c.files...); err != nil {
					b.Fatal(err)
				}
				engine += time.Since(start)
				start = time.Now()
				if out, err := exec.Command("qpdf", c.qpdf...).CombinedOutput(); err != nil {
					b.Fatalf("qpdf: %v: %s", err, out)
				}
				cli += time.Since(start)
			}
			b.ReportMetric(float64(engine.Milliseconds())/float64(b.N), "engine_ms/op")
			b.ReportMetric(float64(cli.Milliseconds())/float64(b.N), "qpdf_ms/op")
			b.ReportMetric(float64(engine)/float64(cli), "x_qpdf")
		})
	}
}
