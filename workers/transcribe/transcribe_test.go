package transcribe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/transcribe"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

// references reads the LibriVox transcription file: "<s> words </s> (id)".
func references(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(librivox, "transcription"))
	if err != nil {
		t.Skipf("pocketsphinx-testdata is not installed: %v", err)
	}
	refs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		i := strings.LastIndex(l, "(")
		if i < 0 {
			continue
		}
		id := strings.TrimSuffix(l[i+1:], ")")
		text := strings.NewReplacer("<s>", "", "</s>", "").Replace(l[:i])
		refs[strings.TrimSpace(id)] = strings.TrimSpace(text)
	}
	return refs
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"-hide_banner", "-v", "error", "-nostdin", "-y"}, args...)
	b, err := exec.Command("ffmpeg", full...).CombinedOutput()
	require.NoError(t, err, "ffmpeg %v: %s", args, b)
}

type result struct {
	outs     []workers.Output
	err      error
	progress []int
}

func run(t testing.TB, e *transcribe.Engine, typ domain.ProcessorType, path string, params map[string]any, lim workers.Limits) result {
	t.Helper()
	params["file_id"] = "f"
	p, _, err := domain.ValidateParams(typ, params)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	var (
		mu sync.Mutex
		r  result
	)
	in := workers.Input{JobID: "j", ProcessorType: typ, Params: p, WorkDir: t.TempDir(), Limits: lim,
		Files:    []workers.LocalFile{{Path: path, Name: filepath.Base(path), Size: st.Size()}},
		Progress: func(pct int, _ string) { mu.Lock(); r.progress = append(r.progress, pct); mu.Unlock() }}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r.outs, r.err = e.Process(ctx, in)
	return r
}

func code(err error) string {
	var pe *domain.ProcessingError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestWER(t *testing.T) {
	cases := []struct {
		ref, hyp string
		want     float64
	}{
		{"he was not an ill disposed young man", "he was not an ill disposed young man", 0},
		{"he was not an ill disposed young man", "He was NOT an ill-disposed young man.", 0},
		{"he was not an ill disposed young man", "he was not an illness those young man", 0.25},
		{"a b c d", "a c d", 0.25},
		{"a b c d", "a b x c d", 0.25},
		{"a b", "", 1},
		{"", "", 0},
		{"", "x", 1},
	}
	for _, c := range cases {
		assert.InDelta(t, c.want, transcribe.WER(c.ref, c.hyp), 1e-9, "%q vs %q", c.ref, c.hyp)
	}
}

func TestParsePocketsphinx(t *testing.T) {
	out := `he was not an illness those young man
<s> 0.000 0.060 0.999500
<sil> 0.070 0.200 0.694306
he 0.210 0.320 0.998701
was(2) 0.330 0.540 0.999800
[SPEECH] 0.980 1.100 0.535598
man 2.330 2.790 0.905008
</s> 2.800 2.970 1.000000
unless
<s> 3.500 3.600 1.0
unless 3.610 4.000 0.9
</s> 4.010 4.200 1.0
`
	segs := transcribe.ParsePocketsphinx(out)
	require.Len(t, segs, 2)
	assert.Equal(t, "he was man", segs[0].Text)
	assert.InDelta(t, 0.0, segs[0].Start, 1e-9)
	assert.InDelta(t, 2.97, segs[0].End, 1e-9)
	assert.Len(t, segs[0].Words, 3)
	assert.Equal(t, "was", segs[0].Words[1].Word)
	assert.Equal(t, "unless", segs[1].Text)
}

func TestWhisperArgsAndJSON(t *testing.T) {
	w := transcribe.WhisperCPP{CLI: "whisper-cli", Model: "/models/ggml-base.en.bin", Threads: 2}
	assert.Equal(t, []string{"-m", "/models/ggml-base.en.bin", "-f", "/w/a.wav", "-l", "en", "-oj", "-of", "/w/a", "-pp", "-t", "2"},
		w.Args("/w/a.wav", "/w/a", ""))
	// The shape whisper-cli -oj writes (whisper.cpp examples/cli).
	sample := `{
  "systeminfo": "AVX = 1 | AVX2 = 1",
  "model": {"type": "base", "multilingual": false, "vocab": 51864},
  "params": {"model": "models/ggml-base.en.bin", "language": "en", "translate": false},
  "result": {"language": "en"},
  "transcription": [
    {"timestamps": {"from": "00:00:00,000", "to": "00:00:02,960"}, "offsets": {"from": 0, "to": 2960}, "text": " He was not an ill-disposed young man."},
    {"timestamps": {"from": "00:00:02,960", "to": "00:00:03,000"}, "offsets": {"from": 2960, "to": 3000}, "text": " [BLANK_AUDIO]"},
    {"timestamps": {"from": "00:01:00,500", "to": "00:01:02,000"}, "offsets": {"from": 60500, "to": 62000}, "text": " Unless to be rather cold hearted."}
  ]
}`
	segs, err := transcribe.ParseWhisperJSON(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, segs, 2)
	assert.Equal(t, "He was not an ill-disposed young man.", segs[0].Text)
	assert.InDelta(t, 2.96, segs[0].End, 1e-9)
	assert.InDelta(t, 60.5, segs[1].Start, 1e-9)

	cli, model := os.Getenv("WHISPER_CLI"), os.Getenv("WHISPER_MODEL")
	if cli == "" || model == "" {
		t.Log("WHISPER_CLI and WHISPER_MODEL not set: whisper-cli itself not run")
		return
	}
	e, err := transcribe.New(transcribe.WhisperCPP{CLI: cli, Model: model})
	require.NoError(t, err)
	r := run(t, e, domain.AudioTranscription, filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav"), map[string]any{}, workers.Limits{})
	require.NoError(t, r.err)
}

// fakeOpenAI is an OpenAI-compatible endpoint that records the request it
// got and answers with a fixed verbose_json.
type fakeOpenAI struct {
	mu     sync.Mutex
	path   string
	auth   string
	fields map[string]string
	file   []byte
	name   string
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path, f.auth, f.fields = r.URL.Path, r.Header.Get("Authorization"), map[string]string{}
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(p)
		if p.FormName() == "file" {
			f.file, f.name = b, p.FileName()
		} else {
			f.fields[p.FormName()] = string(b)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"task":"transcribe","language":"english","duration":2.0,"text":"Hello there. General Kenobi.",
 "segments":[{"id":0,"seek":0,"start":0.0,"end":1.2,"text":" Hello there.","tokens":[1,2],"temperature":0.0,"avg_logprob":-0.2,"compression_ratio":1.1,"no_speech_prob":0.01},
             {"id":1,"seek":0,"start":1.2,"end":2.0,"text":" General Kenobi.","tokens":[3],"temperature":0.0,"avg_logprob":-0.3,"compression_ratio":1.0,"no_speech_prob":0.02}]}`)
}

func TestOpenAIEndpoint(t *testing.T) {
	fake := &fakeOpenAI{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	src := filepath.Join(dir, "talk.mp3")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:a", "libmp3lame", src)

	e, err := transcribe.New(transcribe.OpenAI{URL: srv.URL + "/v1", Key: "sk-test", Model: "whisper-large"})
	require.NoError(t, err)
	r := run(t, e, domain.AudioTranscription, src, map[string]any{"output_format": "srt", "language": "en"}, workers.Limits{})
	require.NoError(t, r.err)
	require.Len(t, r.outs, 1)
	assert.Equal(t, "talk.srt", r.outs[0].Name)
	assert.Equal(t, "application/x-subrip", r.outs[0].MimeType)
	b, err := os.ReadFile(r.outs[0].Path)
	require.NoError(t, err)
	assert.Equal(t, "1\n00:00:00,000 --> 00:00:01,200\nHello there.\n\n2\n00:00:01,200 --> 00:00:02,000\nGeneral Kenobi.\n\n", string(b))
	assert.Equal(t, 100, r.progress[len(r.progress)-1])

	fake.mu.Lock()
	defer fake.mu.Unlock()
	assert.Equal(t, "/v1/audio/transcriptions", fake.path)
	assert.Equal(t, "Bearer sk-test", fake.auth)
	assert.Equal(t, map[string]string{"model": "whisper-large", "response_format": "verbose_json", "language": "en"}, fake.fields)
	require.Greater(t, len(fake.file), 44)
	assert.Equal(t, "RIFF", string(fake.file[:4]))
	assert.Equal(t, "WAVE", string(fake.file[8:12]))
	// 16 kHz mono s16: 2 s ≈ 64000 bytes of samples.
	assert.InDelta(t, 64000, len(fake.file)-44, 2000)
	assert.Equal(t, []byte{0x80, 0x3e, 0, 0}, fake.file[24:28]) // sample rate 16000
}

func TestOpenAIEndpointError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"message":"invalid api key"}}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	src := filepath.Join(t.TempDir(), "a.wav")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=1", src)
	e, err := transcribe.New(transcribe.OpenAI{URL: srv.URL})
	require.NoError(t, err)
	r := run(t, e, domain.AudioTranscription, src, map[string]any{}, workers.Limits{})
	assert.Equal(t, domain.CodeProcessorError, code(r.err))
	assert.Contains(t, r.err.Error(), "invalid api key")
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	m4a := filepath.Join(dir, "speech.m4a")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", m4a)
	data, err := os.ReadFile(m4a)
	require.NoError(t, err)
	silent := filepath.Join(dir, "silent.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5", "-c:v", "libx264", "-preset", "ultrafast", silent)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	e, err := transcribe.New(transcribe.Pocketsphinx{})
	require.NoError(t, err)
	cases := []struct {
		name string
		typ  domain.ProcessorType
		path string
		lim  workers.Limits
		want string
	}{
		{"video without audio", domain.VideoTranscription, silent, workers.Limits{}, domain.CodeUnsupportedFormat},
		{"truncated", domain.AudioTranscription, write("cut.m4a", data[:len(data)/2]), workers.Limits{}, domain.CodeCorruptInput},
		{"zero length", domain.AudioTranscription, write("empty.wav", nil), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"text", domain.AudioTranscription, write("notes.wav", []byte("hello, not audio\n")), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"playlist", domain.VideoTranscription, write("evil.mp4", []byte("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"too long", domain.AudioTranscription, m4a, workers.Limits{MaxDurationSeconds: 2}, domain.CodeInputTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, e, c.typ, c.path, map[string]any{}, c.lim)
			assert.Equal(t, c.want, code(r.err), "%v", r.err)
		})
	}
	t.Run("language pocketsphinx lacks", func(t *testing.T) {
		r := run(t, e, domain.AudioTranscription, m4a, map[string]any{"language": "de"}, workers.Limits{})
		assert.Equal(t, domain.CodeUnsupportedFormat, code(r.err), "%v", r.err)
	})
}

// TestPocketsphinxRecordedSpeech transcribes a LibriVox recording shipped
// by pocketsphinx-testdata and checks the quality (WER), not the speed.
func TestPocketsphinxRecordedSpeech(t *testing.T) {
	refs := references(t)
	const id = "sense_and_sensibility_01_austen_64kb-0880"
	e, err := transcribe.New(transcribe.Pocketsphinx{})
	require.NoError(t, err)
	r := run(t, e, domain.AudioTranscription, filepath.Join(librivox, id+".wav"), map[string]any{"output_format": "vtt"}, workers.Limits{})
	require.NoError(t, r.err)
	b, err := os.ReadFile(r.outs[0].Path)
	require.NoError(t, err)
	vtt := string(b)
	require.True(t, strings.HasPrefix(vtt, "WEBVTT\n\n00:00:00."), vtt)
	var text []string
	for _, l := range strings.Split(vtt, "\n")[1:] {
		if l != "" && !strings.Contains(l, "-->") {
			text = append(text, l)
		}
	}
	wer := transcribe.WER(refs[id], strings.Join(text, " "))
	t.Logf("ref %q\nhyp %q\nWER %.2f", refs[id], strings.Join(text, " "), wer)
	assert.Less(t, wer, 0.6)
	assert.Equal(t, 100, r.progress[len(r.progress)-1])
}

// TestVideoTranscriptionInChunks puts recorded speech into a video and
// transcribes it in 3 s pieces: segment times continue across pieces.
func TestVideoTranscriptionInChunks(t *testing.T) {
	refs := references(t)
	const id = "sense_and_sensibility_01_austen_64kb-0890" // 5.3 s
	video := filepath.Join(t.TempDir(), "talk.mkv")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-i", filepath.Join(librivox, id+".wav"),
		"-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus", video)
	e, err := transcribe.New(transcribe.Pocketsphinx{}, transcribe.WithChunkSeconds(3))
	require.NoError(t, err)
	r := run(t, e, domain.VideoTranscription, video, map[string]any{"output_format": "json"}, workers.Limits{})
	require.NoError(t, r.err)
	assert.Equal(t, "application/json", r.outs[0].MimeType)
	b, err := os.ReadFile(r.outs[0].Path)
	require.NoError(t, err)
	var doc transcribe.Document
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, "pocketsphinx", doc.Engine)
	assert.InDelta(t, 5.3, doc.Duration, 0.6) // the container rounds up to whole video frames
	require.NotEmpty(t, doc.Segments)
	last := doc.Segments[len(doc.Segments)-1]
	assert.Greater(t, last.End, 3.0, "the second piece's times are offset")
	assert.LessOrEqual(t, last.End, doc.Duration+0.1)
	for i := 1; i < len(doc.Segments); i++ {
		assert.GreaterOrEqual(t, doc.Segments[i].Start, doc.Segments[i-1].Start)
	}
	wer := transcribe.WER(refs[id], doc.Text)
	t.Logf("hyp %q WER %.2f progress %v", doc.Text, wer, r.progress)
	assert.Less(t, wer, 0.8, "cutting mid-word costs some accuracy")
	mid := false
	for _, p := range r.progress {
		mid = mid || (p > 30 && p < 70)
	}
	assert.True(t, mid, "progress after the first piece (3 of 5.3 s): %v", r.progress)
}

// BenchmarkPocketsphinxLibriVox transcribes the five LibriVox sentences
// and reports the word error rate over all of them and the real-time
// factor (processing time / audio time, one process at a time).
func BenchmarkPocketsphinxLibriVox(b *testing.B) {
	refs := references(b)
	e, err := transcribe.New(transcribe.Pocketsphinx{})
	require.NoError(b, err)
	var audio, errs, words float64
	start := time.Now()
	for i := 0; i < b.N; i++ {
		audio, errs, words = 0, 0, 0
		for id, ref := range refs {
			path := filepath.Join(librivox, id+".wav")
			r := run(b, e, domain.AudioTranscription, path, map[string]any{"output_format": "json"}, workers.Limits{})
			require.NoError(b, r.err)
			raw, err := os.ReadFile(r.outs[0].Path)
			require.NoError(b, err)
			var doc transcribe.Document
			require.NoError(b, json.NewDecoder(bytes.NewReader(raw)).Decode(&doc))
			n := float64(len(transcribe.Words(ref)))
			errs += transcribe.WER(ref, doc.Text) * n
			words += n
			audio += doc.Duration
			b.Logf("%s WER %.2f: %q", id, transcribe.WER(ref, doc.Text), doc.Text)
		}
	}
	elapsed := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(errs/words, "WER")
	b.ReportMetric(elapsed/audio, "RTF")
	b.ReportMetric(audio, "audio-s")
}

func TestNewTranscriber(t *testing.T) {
	cases := []struct {
		c    transcribe.Config
		name string
	}{
		{transcribe.Config{}, "pocketsphinx"},
		{transcribe.Config{Name: "openai", OpenAIURL: "http://127.0.0.1:1"}, "openai"},
		{transcribe.Config{Name: "whisper"}, ""},
		{transcribe.Config{Name: "whisper", WhisperCLI: "/nonexistent/whisper-cli", WhisperModel: "m.bin"}, ""},
		{transcribe.Config{Name: "openai"}, ""},
		{transcribe.Config{Name: "vosk"}, ""},
	}
	for _, c := range cases {
		tr, err := transcribe.NewTranscriber(c.c)
		if c.name == "" {
			assert.ErrorIs(t, err, transcribe.ErrBadConfig, "%+v", c.c)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.name, tr.Name())
	}
}

// BenchmarkPocketsphinxLongRecording joins the five LibriVox sentences
// TURBOLANE_LONG_REPEAT times (default 6, about 150 s) into one flac and
// transcribes it in the default 120 s pieces: WER over the whole
// recording, real-time factor and the peak RSS of the largest child
// (pocketsphinx or ffmpeg), which stays flat however long the input is.
func BenchmarkPocketsphinxLongRecording(b *testing.B) {
	refs := references(b)
	repeat := 6
	if v := os.Getenv("TURBOLANE_LONG_REPEAT"); v != "" {
		_, _ = fmt.Sscan(v, &repeat)
	}
	dir := b.TempDir()
	list := filepath.Join(dir, "list.txt")
	var lines, ref []string
	ids := []string{"sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0880",
		"sense_and_sensibility_01_austen_64kb-0890", "sense_and_sensibility_01_austen_64kb-0920", "sense_and_sensibility_01_austen_64kb-0930"}
	for r := 0; r < repeat; r++ {
		for _, id := range ids {
			lines = append(lines, "file '"+filepath.Join(librivox, id+".wav")+"'")
			ref = append(ref, refs[id])
		}
	}
	require.NoError(b, os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	long := filepath.Join(dir, "long.flac")
	ffmpeg(b, "-f", "concat", "-safe", "0", "-i", list, "-c:a", "flac", long)
	e, err := transcribe.New(transcribe.Pocketsphinx{})
	require.NoError(b, err)
	var doc transcribe.Document
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r := run(b, e, domain.AudioTranscription, long, map[string]any{"output_format": "json"}, workers.Limits{MemoryLimit: 2 << 30})
		require.NoError(b, r.err)
		raw, err := os.ReadFile(r.outs[0].Path)
		require.NoError(b, err)
		require.NoError(b, json.Unmarshal(raw, &doc))
	}
	elapsed := time.Since(start).Seconds() / float64(b.N)
	var children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	b.ReportMetric(transcribe.WER(strings.Join(ref, " "), doc.Text), "WER")
	b.ReportMetric(elapsed/doc.Duration, "RTF")
	b.ReportMetric(doc.Duration, "audio-s")
	b.ReportMetric(float64(children.Maxrss)/1024, "child-peak-RSS-MB")
}
