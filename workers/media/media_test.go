package media_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/media"
)

// fixture makes a file with ffmpeg's test sources in dir.
func fixture(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	full := append([]string{"-hide_banner", "-v", "error", "-nostdin", "-y"}, args...)
	full = append(full, out)
	b, err := exec.Command("ffmpeg", full...).CombinedOutput()
	require.NoError(t, err, "make fixture %s: %s", name, b)
	return out
}

// clip is a 2 s 320x240 video with a 440 Hz tone.
func clip(t *testing.T, dir string) string {
	t.Helper()
	return fixture(t, dir, "clip.mp4", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=15",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
}

type run struct {
	outs     []workers.Output
	err      error
	progress []int
}

func process(t *testing.T, path string, params map[string]any, lim workers.Limits) run {
	t.Helper()
	params["file_id"] = "f1"
	p, _, err := domain.ValidateParams(domain.MediaProcessing, params)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	var r run
	in := workers.Input{
		JobID: "j1", ProcessorType: domain.MediaProcessing, Params: p,
		Files:   []workers.LocalFile{{Path: path, Name: filepath.Base(path), Size: st.Size()}},
		WorkDir: t.TempDir(), Limits: lim,
		Progress: func(pct int, _ string) { r.progress = append(r.progress, pct) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r.outs, r.err = media.New(media.WithX264Preset("ultrafast")).Process(ctx, in)
	return r
}

func probe(t *testing.T, path string) *media.Info {
	t.Helper()
	info, err := media.Probe(context.Background(), path, 0, 0, 0)
	require.NoError(t, err)
	return info
}

func imageConfig(t *testing.T, path string) (image.Config, string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	require.NoError(t, err)
	return cfg, format
}

func code(err error) string {
	var pe *domain.ProcessingError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestTranscodeEveryContainer(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir)
	cases := []struct {
		format, vcodec, acodec string
	}{
		{"mp4", "h264", "aac"}, {"webm", "vp9", "opus"}, {"mov", "h264", "aac"}, {"mkv", "h264", "aac"},
		{"mp3", "", "mp3"}, {"m4a", "", "aac"}, {"aac", "", "aac"}, {"ogg", "", "opus"},
		{"opus", "", "opus"}, {"wav", "", "pcm_s16le"}, {"flac", "", "flac"},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			r := process(t, src, map[string]any{"operation": "transcode", "output_format": c.format}, workers.Limits{})
			require.NoError(t, r.err)
			require.Len(t, r.outs, 1)
			assert.Equal(t, "clip."+c.format, r.outs[0].Name)
			assert.NotEmpty(t, r.outs[0].MimeType)
			info := probe(t, r.outs[0].Path)
			if c.vcodec != "" {
				require.NotNil(t, info.Video())
				assert.Equal(t, c.vcodec, info.Video().CodecName)
				assert.Equal(t, 320, info.Video().Width)
			} else {
				assert.Nil(t, info.Video())
			}
			require.NotNil(t, info.Audio())
			assert.Equal(t, c.acodec, info.Audio().CodecName)
			assert.InDelta(t, 2.0, info.Duration, 0.3)
			assert.Equal(t, 100, r.progress[len(r.progress)-1])
		})
	}
}

func TestCodecs(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir)
	cases := []struct {
		format, vcodec, acodec string
		wantV, wantA           string
		code                   string
	}{
		{"mp4", "h265", "opus", "hevc", "opus", ""},
		{"mkv", "av1", "vorbis", "av1", "vorbis", ""},
		{"ogg", "", "flac", "", "flac", ""},
		{"webm", "h264", "", "", "", domain.CodeUnsupportedFormat},
		{"mp3", "", "aac", "", "", domain.CodeUnsupportedFormat},
		{"wav", "h264", "", "", "", domain.CodeUnsupportedFormat},
	}
	for _, c := range cases {
		t.Run(c.format+"/"+c.vcodec+"/"+c.acodec, func(t *testing.T) {
			params := map[string]any{"operation": "transcode", "output_format": c.format}
			if c.vcodec != "" {
				params["video_codec"] = c.vcodec
			}
			if c.acodec != "" {
				params["audio_codec"] = c.acodec
			}
			r := process(t, src, params, workers.Limits{MemoryLimit: 2 << 30})
			if c.code != "" {
				assert.Equal(t, c.code, code(r.err), "%v", r.err)
				return
			}
			require.NoError(t, r.err)
			info := probe(t, r.outs[0].Path)
			if c.wantV != "" {
				assert.Equal(t, c.wantV, info.Video().CodecName)
			}
			assert.Equal(t, c.wantA, info.Audio().CodecName)
		})
	}
}

func TestOperations(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir)

	t.Run("extract_audio", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "extract_audio", "output_format": "mp3", "bitrate": "64k"}, workers.Limits{})
		require.NoError(t, r.err)
		info := probe(t, r.outs[0].Path)
		assert.Nil(t, info.Video())
		assert.Equal(t, "mp3", info.Audio().CodecName)
	})
	t.Run("thumbnail png at time", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "thumbnail", "output_format": "png", "time": 1.5}, workers.Limits{})
		require.NoError(t, r.err)
		assert.Equal(t, "clip-thumbnail.png", r.outs[0].Name)
		cfg, format := imageConfig(t, r.outs[0].Path)
		assert.Equal(t, "png", format)
		assert.Equal(t, 320, cfg.Width)
		assert.Equal(t, 240, cfg.Height)
	})
	t.Run("thumbnail jpg default time", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "thumbnail"}, workers.Limits{})
		require.NoError(t, r.err)
		assert.Equal(t, "image/jpeg", r.outs[0].MimeType)
		_, format := imageConfig(t, r.outs[0].Path)
		assert.Equal(t, "jpeg", format)
	})
	t.Run("trim copy", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "trim", "start": 0.0, "duration": 1.0}, workers.Limits{})
		require.NoError(t, r.err)
		info := probe(t, r.outs[0].Path)
		assert.Equal(t, "clip.mp4", r.outs[0].Name)
		assert.InDelta(t, 1.0, info.Duration, 0.35)
	})
	t.Run("trim re-encode", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "trim", "start": 0.5, "duration": 1.0, "output_format": "webm"}, workers.Limits{})
		require.NoError(t, r.err)
		info := probe(t, r.outs[0].Path)
		assert.Equal(t, "vp9", info.Video().CodecName)
		assert.InDelta(t, 1.0, info.Duration, 0.3)
	})
	t.Run("trim past the end", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "trim", "start": 30.0}, workers.Limits{})
		assert.Equal(t, domain.CodeUnsupportedFormat, code(r.err), "%v", r.err)
	})
	t.Run("resize keeps aspect, even sides", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "resize", "width": 101, "output_format": "mkv", "bitrate": "200k"}, workers.Limits{})
		require.NoError(t, r.err)
		v := probe(t, r.outs[0].Path).Video()
		assert.Equal(t, 100, v.Width)
		assert.Equal(t, 76, v.Height) // 100*240/320 = 75 → 76
	})
	t.Run("resize into a box", func(t *testing.T) {
		r := process(t, src, map[string]any{"operation": "resize", "width": 160, "height": 160}, workers.Limits{})
		require.NoError(t, r.err)
		v := probe(t, r.outs[0].Path).Video()
		assert.Equal(t, 160, v.Width)
		assert.Equal(t, 120, v.Height)
	})
	t.Run("bad bitrate", func(t *testing.T) {
		bad := map[string]any{"operation": "transcode", "file_id": "f1", "bitrate": "-i /etc/passwd"}
		_, _, err := domain.ValidateParams(domain.MediaProcessing, bad)
		require.ErrorIs(t, err, domain.ErrValidation, "refused at creation")
		// The engine refuses it too, should a stored job ever carry it.
		st, err := os.Stat(src)
		require.NoError(t, err)
		_, err = media.New().Process(context.Background(), workers.Input{
			JobID: "j1", ProcessorType: domain.MediaProcessing, Params: bad, WorkDir: t.TempDir(),
			Files: []workers.LocalFile{{Path: src, Name: filepath.Base(src), Size: st.Size()}}, Progress: func(int, string) {},
		})
		assert.Equal(t, domain.CodeUnsupportedFormat, code(err))
	})
	t.Run("thumbnail of audio", func(t *testing.T) {
		audio := fixture(t, dir, "tone.wav", "-f", "lavfi", "-i", "sine=duration=1")
		r := process(t, audio, map[string]any{"operation": "thumbnail"}, workers.Limits{})
		assert.Equal(t, domain.CodeUnsupportedFormat, code(r.err))
	})
	t.Run("extract_audio of silent video", func(t *testing.T) {
		silent := fixture(t, dir, "silent.mkv", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5", "-c:v", "libx264", "-preset", "ultrafast")
		r := process(t, silent, map[string]any{"operation": "extract_audio"}, workers.Limits{})
		assert.Equal(t, domain.CodeUnsupportedFormat, code(r.err))
		assert.Contains(t, r.err.Error(), "no audio track")
	})
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir)
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	hls := "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10,\nfile:///etc/passwd\n#EXTINF:10,\n/etc/passwd\n#EXTINF:10,\nhttp://127.0.0.1:1/x.ts\n#EXT-X-ENDLIST\n"
	concat := "ffconcat version 1.0\nfile 'file:///etc/passwd'\nfile '/etc/passwd'\nfile 'http://127.0.0.1:1/x.mp4'\n"
	cases := []struct {
		name, file string
		data       []byte
		lim        workers.Limits
		want       string
	}{
		{"hls playlist named mp4", "evil.mp4", []byte(hls), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"hls playlist", "evil.m3u8", []byte(hls), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"ffconcat", "evil.ffconcat", []byte(concat), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"not media", "notes.mp4", []byte("just some text, not a video at all\n"), workers.Limits{}, domain.CodeUnsupportedFormat},
		{"zero length", "empty.mp4", nil, workers.Limits{}, domain.CodeUnsupportedFormat},
		{"truncated", "cut.mp4", data[:len(data)/2], workers.Limits{}, domain.CodeCorruptInput},
		{"too long", "long.mp4", data, workers.Limits{MaxDurationSeconds: 1}, domain.CodeInputTooLarge},
		{"too many pixels", "big.mp4", data, workers.Limits{MaxPixels: 320 * 200}, domain.CodeInputTooLarge},
		{"too big a result", "out.mp4", data, workers.Limits{MaxOutputBytes: 4096}, domain.CodeInputTooLarge},
		{"too big an input", "in.mp4", data, workers.Limits{MaxInputBytes: 100}, domain.CodeInputTooLarge},
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(c.file, c.data)
			r := process(t, p, map[string]any{"operation": "transcode", "output_format": "wav"}, c.lim)
			require.Error(t, r.err)
			assert.Equal(t, c.want, code(r.err), "%v", r.err)
			for _, o := range r.outs {
				b, _ := os.ReadFile(o.Path)
				assert.False(t, len(passwd) > 0 && bytes.Contains(b, passwd[:min(len(passwd), 16)]))
			}
			assert.NotContains(t, r.err.Error(), "root:x:")
		})
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	src := clip(t, dir)
	p, _, err := domain.ValidateParams(domain.MediaProcessing, map[string]any{"file_id": "f", "operation": "transcode"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = media.New().Process(ctx, workers.Input{Params: p, WorkDir: t.TempDir(),
		Files: []workers.LocalFile{{Path: src, Name: "clip.mp4"}}})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	_ = strings.TrimSpace
}
