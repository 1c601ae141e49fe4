package transcribe_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/workers/transcribe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTranscriberConformance runs every Transcriber available here on the
// same recording and checks what all of them promise: ordered segments
// inside the audio, non-empty text, progress within the audio, and an error
// for a cancelled context.
func TestTranscriberConformance(t *testing.T) {
	wav := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav") // 2.99 s
	if _, err := os.Stat(wav); err != nil {
		t.Skipf("pocketsphinx-testdata is not installed: %v", err)
	}
	srv := httptest.NewServer(&fakeOpenAI{})
	t.Cleanup(srv.Close)
	impls := []transcribe.Transcriber{transcribe.Pocketsphinx{}, transcribe.OpenAI{URL: srv.URL}}
	if cli, model := os.Getenv("WHISPER_CLI"), os.Getenv("WHISPER_MODEL"); cli != "" && model != "" {
		impls = append(impls, transcribe.WhisperCPP{CLI: cli, Model: model})
	}
	for _, tr := range impls {
		t.Run(tr.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var pos []float64
			segs, err := tr.Transcribe(ctx, wav, transcribe.Options{Language: "en", WorkDir: t.TempDir(),
				Progress: func(s float64) { pos = append(pos, s) }})
			require.NoError(t, err)
			require.NotEmpty(t, segs)
			prev := 0.0
			for _, s := range segs {
				assert.NotEmpty(t, s.Text)
				assert.LessOrEqual(t, s.Start, s.End)
				assert.GreaterOrEqual(t, s.Start, prev)
				assert.LessOrEqual(t, s.End, 3.1)
				prev = s.Start
			}
			for _, p := range pos {
				assert.LessOrEqual(t, p, 3.1)
			}

			cancelled, stop := context.WithCancel(context.Background())
			stop()
			_, err = tr.Transcribe(cancelled, wav, transcribe.Options{WorkDir: t.TempDir()})
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}

func FuzzParsePocketsphinx(f *testing.F) {
	f.Add("he was\n<s> 0.000 0.060 0.99\nhe 0.21 0.32 0.99\n</s> 2.8 2.9 1.0\n")
	f.Add("x 1 2\n<s> a b c\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, s := range transcribe.ParsePocketsphinx(out) {
			if s.Text == "" {
				t.Fatalf("empty segment from %q", out)
			}
		}
	})
}
