package media_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/media"
)

// BenchmarkTranscodeVsCLI transcodes the same 5 s 640x360 clip to mp4 with
// the engine and with the plain ffmpeg command line it stands for, and
// reports engine/CLI as "ratio".
func BenchmarkTranscodeVsCLI(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "clip.mkv")
	out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=duration=5:size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=duration=5", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", src).CombinedOutput()
	require.NoError(b, err, "%s", out)
	st, err := os.Stat(src)
	require.NoError(b, err)
	p, _, err := domain.ValidateParams(domain.MediaProcessing, map[string]any{"file_id": "f", "operation": "transcode", "output_format": "mp4"})
	require.NoError(b, err)
	e := media.New()
	var engine, cli time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		_, err := e.Process(context.Background(), workers.Input{Params: p, WorkDir: b.TempDir(),
			Files: []workers.LocalFile{{Path: src, Name: "clip.mkv", Size: st.Size()}}})
		require.NoError(b, err)
		engine += time.Since(t0)
		t0 = time.Now()
		out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", src, "-c:v", "libx264", "-preset", "veryfast",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", filepath.Join(b.TempDir(), "cli.mp4")).CombinedOutput()
		require.NoError(b, err, "%s", out)
		cli += time.Since(t0)
	}
	b.ReportMetric(engine.Seconds()/float64(b.N), "engine-s")
	b.ReportMetric(cli.Seconds()/float64(b.N), "cli-s")
	b.ReportMetric(engine.Seconds()/cli.Seconds(), "ratio")
}

// BenchmarkLargeVideoRSS transcodes (resizes to 640 wide) a video of about
// TURBOLANE_BIG_MEDIA_MB megabytes (default 1024) of 1080p MJPEG and
// reports the peak RSS of this process (the worker side: Go, the engine,
// progress parsing) and of the largest child (an upper bound for the
// engine's ffmpeg: the fixture's ffmpeg runs count too). It only runs when
// TURBOLANE_BIG_MEDIA is set, because making and transcoding the file takes
// minutes and a gigabyte of disk:
//
//	TURBOLANE_BIG_MEDIA=1 go test -run XXX -bench LargeVideoRSS -benchtime 1x ./workers/media
func BenchmarkLargeVideoRSS(b *testing.B) {
	if os.Getenv("TURBOLANE_BIG_MEDIA") == "" {
		b.Skip("set TURBOLANE_BIG_MEDIA=1 to make and transcode a 1 GB video")
	}
	mb := int64(1024)
	if v, err := strconv.ParseInt(os.Getenv("TURBOLANE_BIG_MEDIA_MB"), 10, 64); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	seg := filepath.Join(dir, "seg.mkv")
	out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "mjpeg", "-q:v", "1", "-c:a", "pcm_s16le", seg).CombinedOutput()
	require.NoError(b, err, "%s", out)
	st, err := os.Stat(seg)
	require.NoError(b, err)
	loops := mb<<20/st.Size() + 1
	big := filepath.Join(dir, "big.mkv")
	out, err = exec.Command("ffmpeg", "-v", "error", "-y", "-stream_loop", strconv.FormatInt(loops-1, 10), "-i", seg, "-c", "copy", big).CombinedOutput()
	require.NoError(b, err, "%s", out)
	_ = os.Remove(seg)
	st, err = os.Stat(big)
	require.NoError(b, err)
	b.Logf("input %d MB", st.Size()>>20)

	p, _, err := domain.ValidateParams(domain.MediaProcessing, map[string]any{"file_id": "f", "operation": "resize", "width": 640, "output_format": "mp4"})
	require.NoError(b, err)
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	e := media.New(media.WithX264Preset("ultrafast"))
	last := 0
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		outs, err := e.Process(context.Background(), workers.Input{Params: p, WorkDir: b.TempDir(),
			Files:    []workers.LocalFile{{Path: big, Name: "big.mkv", Size: st.Size()}},
			Limits:   workers.Limits{MemoryLimit: 2 << 30, MaxOutputBytes: 2 << 30},
			Progress: func(pct int, _ string) { last = pct }})
		require.NoError(b, err)
		if i == 0 {
			o, _ := os.Stat(outs[0].Path)
			b.Logf("output %d MB, last progress %d", o.Size()>>20, last)
		}
	}
	elapsed := time.Since(t0).Seconds() / float64(b.N)
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	b.ReportMetric(float64(self.Maxrss)/1024, "worker-peak-RSS-MB")
	b.ReportMetric(float64(children.Maxrss)/1024, "ffmpeg-peak-RSS-MB")
	b.ReportMetric(float64(st.Size()>>20), "input-MB")
	b.ReportMetric(elapsed, "s/transcode")
	b.Log(fmt.Sprintf("worker RSS before %d MB", before.Maxrss/1024))
}
