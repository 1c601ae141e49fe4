package media

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
)

// Defaults applied when the runner passes zero limits.
const (
	DefaultMaxInputBytes = 8 << 30
	DefaultMaxPixels     = 8192 * 4320
)

// Engine runs media_processing jobs with ffmpeg. It holds no state between
// jobs and is safe for concurrent use.
type Engine struct {
	x264Preset string
	vp9Speed   int
}

var _ workers.Engine = (*Engine)(nil)

// Option configures an Engine.
type Option func(*Engine)

// WithX264Preset sets the libx264 preset for mp4, mov and mkv output
// (default "veryfast"; "ultrafast" for tests).
func WithX264Preset(p string) Option { return func(e *Engine) { e.x264Preset = p } }

// New returns a media engine.
func New(opts ...Option) *Engine {
	e := &Engine{x264Preset: "veryfast", vp9Speed: 8}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Types lists the processor types this engine serves.
func (e *Engine) Types() []domain.ProcessorType {
	return []domain.ProcessorType{domain.MediaProcessing}
}

// Mime types of the outputs.
var mimeTypes = map[string]string{
	"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "mkv": "video/x-matroska",
	"mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "ogg": "audio/ogg", "opus": "audio/ogg",
	"wav": "audio/wav", "flac": "audio/flac", "jpg": "image/jpeg", "png": "image/png",
}

func isVideoFormat(f string) bool { return f == "mp4" || f == "webm" || f == "mov" || f == "mkv" }
func isImageFormat(f string) bool { return f == "jpg" || f == "png" }

// videoCodecs and audioCodecs list the codecs each output format can hold;
// the first is the default.
var (
	videoCodecs = map[string][]string{
		"mp4": {"h264", "h265", "vp9", "av1"}, "mov": {"h264", "h265"},
		"mkv": {"h264", "h265", "vp9", "av1"}, "webm": {"vp9", "av1"},
	}
	audioCodecs = map[string][]string{
		"mp4": {"aac", "mp3", "opus"}, "mov": {"aac", "mp3"}, "mkv": {"aac", "opus", "mp3", "vorbis", "flac"},
		"webm": {"opus", "vorbis"}, "mp3": {"mp3"}, "m4a": {"aac"}, "aac": {"aac"},
		"ogg": {"opus", "vorbis", "flac"}, "opus": {"opus"}, "wav": {"pcm"}, "flac": {"flac"},
	}
)

// codec returns the requested codec if format can hold it, or the format's
// default when none was asked for.
func codec(kind, asked, format string, table map[string][]string) (string, error) {
	list := table[format]
	if asked == "" {
		if len(list) == 0 {
			return "", nil
		}
		return list[0], nil
	}
	for _, c := range list {
		if c == asked {
			return c, nil
		}
	}
	if len(list) == 0 {
		return "", domain.Failf(domain.CodeUnsupportedFormat, "%s has no %s stream, so %s_codec %s does not apply", format, kind, kind, asked)
	}
	return "", domain.Failf(domain.CodeUnsupportedFormat, "%s cannot hold %s %s; it takes %s", format, kind, asked, strings.Join(list, ", "))
}

var bitrateRe = regexp.MustCompile(`^[1-9][0-9]*(\.[0-9]+)?[kKmM]?$`)

// Process runs one media_processing job.
func (e *Engine) Process(ctx context.Context, in workers.Input) ([]workers.Output, error) {
	if len(in.Files) != 1 {
		return nil, fmt.Errorf("media_processing takes one input, got %d", len(in.Files))
	}
	src := in.Files[0]
	lim := in.Limits
	maxIn := lim.MaxInputBytes
	if maxIn <= 0 {
		maxIn = DefaultMaxInputBytes
	}
	if src.Size > maxIn {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the input has %d bytes, more than the limit of %d", src.Size, maxIn)
	}
	maxPix := lim.MaxPixels
	if maxPix <= 0 {
		maxPix = DefaultMaxPixels
	}
	op, _ := in.Params["operation"].(string)
	format, _ := in.Params["output_format"].(string)
	bitrate, _ := in.Params["bitrate"].(string)
	if bitrate != "" && !bitrateRe.MatchString(bitrate) {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "bitrate %q is not a number with an optional k or M suffix", bitrate)
	}
	progress := func(int, string) {}
	if in.Progress != nil {
		progress = in.Progress
	}

	progress(0, "probing")
	info, err := Probe(ctx, src.Path, lim.MemoryLimit, lim.MaxDurationSeconds, maxPix)
	if err != nil {
		return nil, err
	}
	j := &job{e: e, in: in, info: info, bitrate: bitrate}
	if format, err = j.outputFormat(op, format); err != nil {
		return nil, err
	}
	if op != "thumbnail" {
		j.askedCodec = in.Params["video_codec"] != nil || in.Params["audio_codec"] != nil
		asked, _ := in.Params["video_codec"].(string)
		if j.vcodec, err = codec("video", asked, format, videoCodecs); err != nil {
			return nil, err
		}
		asked, _ = in.Params["audio_codec"].(string)
		if j.acodec, err = codec("audio", asked, format, audioCodecs); err != nil {
			return nil, err
		}
	}
	outDir, err := os.MkdirTemp(in.WorkDir, "media-out-")
	if err != nil {
		return nil, fmt.Errorf("make media output dir: %w", err)
	}
	base := strings.TrimSuffix(src.Name, filepath.Ext(src.Name))
	if base == "" || base == "." || strings.ContainsAny(base, `/\`) {
		base = "output"
	}
	name := base + "." + format
	if op == "thumbnail" {
		name = base + "-thumbnail." + format
	}
	out := filepath.Join(outDir, name)

	pre, post, length, err := j.args(op, format)
	if err != nil {
		return nil, err
	}
	// Never write more than the duration limit, whatever the input claims.
	if lim.MaxDurationSeconds > 0 && op != "thumbnail" {
		post = append(post, "-t", formatSeconds(lim.MaxDurationSeconds))
	}
	var onPos func(float64)
	if length > 0 {
		last := -1
		onPos = func(sec float64) {
			pct := int(math.Min(99, 100*sec/length))
			if pct > last {
				last = pct
				progress(pct, op)
			}
		}
	}
	progress(1, op)
	if err := Run(ctx, src.Path, pre, post, out, lim.MemoryLimit, lim.MaxOutputBytes, onPos); err != nil {
		return nil, err
	}
	progress(100, "done")
	return []workers.Output{{Path: out, Name: name, MimeType: mimeTypes[format]}}, nil
}

type job struct {
	e       *Engine
	in      workers.Input
	info    *Info
	bitrate string
	// vcodec and acodec are the codecs to encode with; askedCodec is true
	// when the job named one (no stream copy then).
	vcodec, acodec string
	askedCodec     bool
}

// outputFormat checks the format against the operation and picks a default.
func (j *job) outputFormat(op, format string) (string, error) {
	hasVideo := j.info.Video() != nil
	hasAudio := j.info.Audio() != nil
	switch op {
	case "thumbnail":
		if format == "" {
			format = "jpg"
		}
		if !isImageFormat(format) {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "a thumbnail is jpg or png, not %s", format)
		}
		if !hasVideo {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "the input has no video stream to take a thumbnail of")
		}
	case "extract_audio":
		if format == "" {
			format = "mp3"
		}
		if isVideoFormat(format) || isImageFormat(format) {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "extract_audio writes an audio format, not %s", format)
		}
		if !hasAudio {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "the input has no audio track")
		}
	case "transcode", "trim", "resize":
		if format == "" {
			format = j.info.Container()
			if op == "transcode" || format == "" {
				format = "mp4"
				if !hasVideo {
					format = "mp3"
				}
			}
		}
		if isImageFormat(format) {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "%s writes audio or video, not %s (use thumbnail)", op, format)
		}
		if op == "resize" && (!hasVideo || !isVideoFormat(format)) {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "resize needs a video input and a video output format")
		}
		if !isVideoFormat(format) && !hasAudio {
			return "", domain.Failf(domain.CodeUnsupportedFormat, "the input has no audio track to write as %s", format)
		}
	default:
		return "", domain.Failf(domain.CodeUnsupportedFormat, "unknown media operation %q", op)
	}
	return format, nil
}

func (j *job) num(name string) (float64, bool) {
	switch v := j.in.Params[name].(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// args builds the options before and after -i and returns the expected
// output length in seconds for progress.
func (j *job) args(op, format string) (pre, post []string, length float64, err error) {
	dur := j.info.Duration
	switch op {
	case "thumbnail":
		at, ok := j.num("time")
		if !ok {
			at = dur / 10
		}
		if dur > 0 && at >= dur {
			at = math.Max(0, dur-0.1)
		}
		pre = []string{"-ss", formatSeconds(at)}
		post = []string{"-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"}
		if format == "jpg" {
			post = append(post, "-q:v", "3", "-f", "image2", "-c:v", "mjpeg")
		} else {
			post = append(post, "-f", "image2", "-c:v", "png")
		}
		return pre, post, 0, nil
	case "trim":
		start, _ := j.num("start")
		if dur > 0 && start >= dur {
			return nil, nil, 0, domain.Failf(domain.CodeUnsupportedFormat, "trim start %.3f s is past the end of the input (%.3f s)", start, dur)
		}
		length = dur - start
		if start > 0 {
			pre = append(pre, "-ss", formatSeconds(start))
		}
		if d, ok := j.num("duration"); ok && d > 0 {
			pre = append(pre, "-t", formatSeconds(d))
			if d < length || length <= 0 {
				length = d
			}
		}
		if format == j.info.Container() && j.bitrate == "" && !j.askedCodec {
			// Same container: copy the streams (cuts on key frames).
			post = []string{"-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-avoid_negative_ts", "make_zero"}
			return pre, append(post, j.muxer(format)...), length, nil
		}
		return pre, j.encode(format, ""), length, nil
	case "resize":
		w, hasW := j.num("width")
		h, hasH := j.num("height")
		var filter string
		switch {
		case hasW && hasH:
			filter = fmt.Sprintf("scale=w=%d:h=%d:force_original_aspect_ratio=decrease:force_divisible_by=2", int(w), int(h))
		case hasW:
			filter = fmt.Sprintf("scale=w=%d:h=-2", evenDown(int(w)))
		default:
			filter = fmt.Sprintf("scale=w=-2:h=%d", evenDown(int(h)))
		}
		return nil, j.encode(format, filter), dur, nil
	case "extract_audio":
		return nil, j.encode(format, ""), dur, nil
	default: // transcode
		return nil, j.encode(format, ""), dur, nil
	}
}

func evenDown(n int) int {
	if n%2 == 1 {
		n--
	}
	if n < 2 {
		n = 2
	}
	return n
}

// encode returns the codec options for format, with an optional video
// filter.
func (j *job) encode(format, vfilter string) []string {
	var a []string
	video := isVideoFormat(format) && j.info.Video() != nil
	if video {
		a = append(a, "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn")
	} else {
		a = append(a, "-map", "0:a:0", "-vn", "-sn", "-dn")
	}
	if video {
		if vfilter != "" {
			a = append(a, "-vf", vfilter)
		} else {
			// Most encoders need even sides in yuv420p.
			a = append(a, "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2")
		}
		switch j.vcodec {
		case "vp9":
			a = append(a, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", strconv.Itoa(j.e.vp9Speed), "-row-mt", "1")
			if j.bitrate == "" {
				a = append(a, "-b:v", "0", "-crf", "36")
			}
		case "av1":
			a = append(a, "-c:v", "libsvtav1", "-preset", "10")
			if j.bitrate == "" {
				a = append(a, "-crf", "40")
			}
		case "h265":
			a = append(a, "-c:v", "libx265", "-preset", j.e.x264Preset, "-x265-params", "log-level=error")
			if format == "mp4" || format == "mov" {
				a = append(a, "-tag:v", "hvc1") // what Apple players look for
			}
		default:
			a = append(a, "-c:v", "libx264", "-preset", j.e.x264Preset)
		}
		a = append(a, "-pix_fmt", "yuv420p")
		if j.bitrate != "" {
			a = append(a, "-b:v", j.bitrate)
		}
	}
	switch j.acodec {
	case "opus":
		a = append(a, "-c:a", "libopus")
	case "vorbis":
		a = append(a, "-c:a", "libvorbis")
	case "mp3":
		a = append(a, "-c:a", "libmp3lame")
	case "pcm":
		a = append(a, "-c:a", "pcm_s16le")
	case "flac":
		a = append(a, "-c:a", "flac")
	default:
		a = append(a, "-c:a", "aac")
	}
	if !video && j.bitrate != "" && j.acodec != "pcm" && j.acodec != "flac" {
		a = append(a, "-b:a", j.bitrate)
	}
	return append(a, j.muxer(format)...)
}

// muxer names the output muxer explicitly, so the extension of the output
// path never decides it.
func (j *job) muxer(format string) []string {
	switch format {
	case "mp4":
		return []string{"-movflags", "+faststart", "-f", "mp4"}
	case "m4a":
		return []string{"-movflags", "+faststart", "-f", "ipod"}
	case "mov":
		return []string{"-movflags", "+faststart", "-f", "mov"}
	case "mkv":
		return []string{"-f", "matroska"}
	case "aac":
		return []string{"-f", "adts"}
	case "opus":
		return []string{"-f", "opus"}
	default: // webm, mp3, ogg, wav, flac
		return []string{"-f", format}
	}
}
