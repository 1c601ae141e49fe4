package document

import (
	"archive/zip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEngine != nil {
		if err := sharedEngine.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close shared engine:", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	sharedOnce   sync.Once
	sharedEngine *Engine
	sharedErr    error
)

// shared is one warm engine used by the conversion and hostile-input tests,
// so that the suite pays for one LibreOffice start.
func shared(t *testing.T) *Engine {
	t.Helper()
	if _, err := exec.LookPath("soffice"); err != nil {
		t.Skip("LibreOffice (soffice) is not installed")
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sharedEngine, sharedErr = New(ctx)
	})
	require.NoError(t, sharedErr)
	return sharedEngine
}

// newEngine starts an engine for one test and closes it afterwards.
func newEngine(t *testing.T, opts ...Option) *Engine {
	t.Helper()
	if _, err := exec.LookPath("soffice"); err != nil {
		t.Skip("LibreOffice (soffice) is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := New(ctx, append([]Option{WithDir(t.TempDir())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

// convert runs one job on e and returns its output or error.
func convert(t *testing.T, e *Engine, path, name, target string) (workers.Output, error) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var msgs []string
	in := inputFor(t, path, name, fi.Size(), target)
	in.Progress = func(_ int, msg string) { msgs = append(msgs, msg) }
	outs, err := e.Process(ctx, in)
	if err != nil {
		return workers.Output{}, err
	}
	require.Len(t, outs, 1)
	require.Contains(t, msgs, "converting")
	require.Contains(t, msgs, "done")
	return outs[0], nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func pdfText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "%PDF"), "not a PDF")
	out, err := exec.Command("pdftotext", path, "-").Output()
	require.NoError(t, err)
	return string(out)
}

func zipHas(t *testing.T, path, entry string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == entry {
			return
		}
	}
	t.Fatalf("%s has no %s", path, entry)
}

func inputFor(t *testing.T, path, name string, size int64, target string) workers.Input {
	t.Helper()
	return inputForBench(t, path, name, size, target)
}

func inputForBench(tb testing.TB, path, name string, size int64, target string) workers.Input {
	return workers.Input{
		JobID: "job", ProcessorType: domain.DocumentConversion,
		Params:  map[string]any{"output_format": target},
		Files:   []workers.LocalFile{{Path: path, Name: name, Size: size}},
		WorkDir: tb.TempDir(),
	}
}
