package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convilyn/turbolane/workers/media"
)

// ffmpegFixture makes a small file with ffmpeg's test sources.
func ffmpegFixture(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	full := append(append([]string{"-hide_banner", "-v", "error", "-nostdin", "-y"}, args...), out)
	if b, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v: %s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMediaThroughAPI transcodes a video through the API, checks the result
// with ffprobe, and sends a hostile playlist that must fail without harm.
func TestMediaThroughAPI(t *testing.T) {
	m := startServe(t)
	c := newClient(t, m.URL, "")
	clip := ffmpegFixture(t, "clip.mp4", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=15",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	evil := c.upload("evil.mp4", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXTINF:10,\nhttp://127.0.0.1:1/x.ts\n#EXT-X-ENDLIST\n"))
	bad := c.waitJob(c.createJob("media_processing", map[string]any{"file_id": evil, "operation": "transcode", "output_format": "wav"}).JobID)
	if bad.Status != "failed" || bad.Error == nil || bad.Error.Code != "unsupported_format" {
		t.Fatalf("hostile playlist: %+v", bad)
	}
	if strings.Contains(bad.Error.Message, "root:") {
		t.Fatalf("the error leaks /etc/passwd: %s", bad.Error.Message)
	}

	id := c.upload("clip.mp4", clip)
	j := c.waitJob(c.createJob("media_processing", map[string]any{"file_id": id, "operation": "transcode", "output_format": "webm"}).JobID)
	if j.Status != "completed" || len(j.ResultFiles) != 1 {
		t.Fatalf("transcode: %+v", j)
	}
	rf := j.ResultFiles[0]
	if rf.FileName != "clip.webm" || rf.MimeType != "video/webm" || j.Progress != 100 {
		t.Fatalf("result %+v progress %d", rf, j.Progress)
	}
	dl := c.download(rf.DownloadURL)
	if dl.Status != 200 || int64(len(dl.Body)) != rf.SizeBytes {
		t.Fatalf("download: %d, %d bytes", dl.Status, len(dl.Body))
	}
	path := filepath.Join(t.TempDir(), "out.webm")
	if err := os.WriteFile(path, dl.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := media.Probe(context.Background(), path, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v := info.Video(); v == nil || v.CodecName != "vp9" || v.Width != 320 || info.Audio() == nil || info.Audio().CodecName != "opus" {
		t.Fatalf("probe: %+v", info)
	}
}

// TestTranscriptionThroughAPI transcribes recorded speech (Debian's
// pocketsphinx-testdata) with the default pocketsphinx engine.
func TestTranscriptionThroughAPI(t *testing.T) {
	const wav = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
	speech, err := os.ReadFile(wav)
	if err != nil {
		t.Skipf("pocketsphinx-testdata is not installed: %v", err)
	}
	m := startServe(t)
	c := newClient(t, m.URL, "")
	id := c.upload("speech.wav", speech)
	j := c.waitJob(c.createJob("audio_transcription", map[string]any{"file_id": id, "output_format": "srt"}).JobID)
	if j.Status != "completed" || len(j.ResultFiles) != 1 {
		t.Fatalf("transcription: %+v", j)
	}
	if rf := j.ResultFiles[0]; rf.FileName != "speech.srt" || rf.MimeType != "application/x-subrip" {
		t.Fatalf("result %+v", rf)
	}
	srt := string(c.download(j.ResultFiles[0].DownloadURL).Body)
	if !strings.HasPrefix(srt, "1\n00:00:00,") || !strings.Contains(srt, " --> ") || !strings.Contains(srt, "young man") {
		t.Fatalf("srt:\n%s", srt)
	}
}
