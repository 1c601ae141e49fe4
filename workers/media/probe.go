package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// FormatWhitelist lists the demuxers ffprobe and ffmpeg may use. Playlist
// and indirection demuxers (hls, concat, dash, image2 patterns, tee …) are
// left out on purpose: they open further files or URLs named in the input.
const FormatWhitelist = "mov,matroska,avi,mp3,aac,ogg,wav,flac,mpegts,flv,asf,aiff,caf,w64,wv,amr,mpeg"

// SafeInputArgs are the options put before every -i: no stdin, only the
// file and pipe protocols, only the whitelisted demuxers.
func SafeInputArgs() []string {
	return []string{"-protocol_whitelist", "file,pipe", "-format_whitelist", FormatWhitelist}
}

// FileURL turns a path into an ffmpeg file: URL, so that a name such as
// "http:x" or "-y" is never taken as a protocol or an option.
func FileURL(path string) string { return "file:" + path }

// Stream is one stream of a probed file.
type Stream struct {
	Index     int    `json:"index"`
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Duration  string `json:"duration"`
}

// Info is what ffprobe says about a file.
type Info struct {
	// FormatName is ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
	FormatName string
	// Duration in seconds; 0 when unknown.
	Duration float64
	Streams  []Stream
}

// Video returns the first video stream (attached pictures such as cover art
// count too) or nil.
func (i *Info) Video() *Stream { return i.first("video") }

// Audio returns the first audio stream or nil.
func (i *Info) Audio() *Stream { return i.first("audio") }

func (i *Info) first(kind string) *Stream {
	for k := range i.Streams {
		if i.Streams[k].CodecType == kind {
			return &i.Streams[k]
		}
	}
	return nil
}

// Container returns the output extension that matches the input's
// container (mp4, mkv, webm, …), or "" when there is none in the catalog.
func (i *Info) Container() string {
	names := strings.Split(i.FormatName, ",")
	has := func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
	switch {
	case has("mov") || has("mp4"):
		if i.Video() == nil {
			return "m4a"
		}
		return "mp4"
	case has("matroska"):
		return "mkv"
	case has("ogg"):
		return "ogg"
	}
	for _, n := range []string{"mp3", "aac", "wav", "flac"} {
		if has(n) {
			return n
		}
	}
	return ""
}

// Probe runs ffprobe on path and checks the result against the limits:
// maxDuration (seconds, 0 = none) and maxPixels (0 = none). Errors are
// *domain.ProcessingError values with the contract's codes, or the context's
// error.
func Probe(ctx context.Context, path string, memLimit int64, maxDuration float64, maxPixels int64) (*Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat media input: %w", err)
	}
	if st.Size() == 0 {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "the file is empty")
	}
	args := append([]string{"-v", "error", "-hide_banner"}, SafeInputArgs()...)
	args = append(args, "-print_format", "json", "-show_format", "-show_streams", FileURL(path))
	var out bytes.Buffer
	_, err = subprocess.Run(ctx, subprocess.Cmd{Path: "ffprobe", Args: args, Stdout: &limitWriter{w: &out, n: 4 << 20}, MemoryLimit: memLimit})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, subprocess.ErrNotInstalled) {
			return nil, fmt.Errorf("probe media: %w", err)
		}
		return nil, notMedia(path, err)
	}
	var raw struct {
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
		Streams []Stream `json:"streams"`
	}
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("read ffprobe output: %w", err)
	}
	info := &Info{FormatName: raw.Format.FormatName, Streams: raw.Streams}
	info.Duration, _ = strconv.ParseFloat(raw.Format.Duration, 64)
	if info.Duration == 0 {
		for _, s := range raw.Streams {
			if d, err := strconv.ParseFloat(s.Duration, 64); err == nil && d > info.Duration {
				info.Duration = d
			}
		}
	}
	if info.Video() == nil && info.Audio() == nil {
		return nil, domain.Failf(domain.CodeUnsupportedFormat, "the file has no audio or video stream")
	}
	if maxDuration > 0 && info.Duration > maxDuration {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the media lasts %.0f s, more than the limit of %.0f s", info.Duration, maxDuration)
	}
	if v := info.Video(); v != nil && maxPixels > 0 && int64(v.Width)*int64(v.Height) > maxPixels {
		return nil, domain.Failf(domain.CodeInputTooLarge, "the video is %dx%d, more than the limit of %d pixels", v.Width, v.Height, maxPixels)
	}
	return info, nil
}

// notMedia decides between corrupt_input (the bytes start like a media
// container ffprobe knows, so the file is damaged or truncated) and
// unsupported_format (anything else, including playlists).
func notMedia(path string, err error) error {
	head := make([]byte, 16)
	if f, oerr := os.Open(path); oerr == nil {
		n, _ := io.ReadFull(f, head)
		head = head[:n]
		_ = f.Close()
	}
	msg := "ffprobe cannot read the file"
	var ee *subprocess.ExitError
	if errors.As(err, &ee) {
		if s := strings.TrimSpace(ee.Stderr); s != "" {
			msg += ": " + lastLine(s)
		}
	}
	if LooksLikeMedia(head) {
		return domain.Failf(domain.CodeCorruptInput, "the media file is damaged or truncated (%s)", msg)
	}
	return domain.Failf(domain.CodeUnsupportedFormat, "not an audio or video file (%s)", msg)
}

// LooksLikeMedia reports whether head starts with the signature of a
// container in FormatWhitelist.
func LooksLikeMedia(head []byte) bool {
	switch {
	case len(head) >= 8 && string(head[4:8]) == "ftyp",
		len(head) >= 8 && (string(head[4:8]) == "moov" || string(head[4:8]) == "mdat" || string(head[4:8]) == "wide" || string(head[4:8]) == "free"),
		bytes.HasPrefix(head, []byte{0x1a, 0x45, 0xdf, 0xa3}), // EBML: mkv, webm
		bytes.HasPrefix(head, []byte("RIFF")),                 // wav, avi
		bytes.HasPrefix(head, []byte("OggS")),
		bytes.HasPrefix(head, []byte("fLaC")),
		bytes.HasPrefix(head, []byte("ID3")),
		bytes.HasPrefix(head, []byte("FLV")),
		bytes.HasPrefix(head, []byte("FORM")), // aiff
		bytes.HasPrefix(head, []byte("caff")),
		bytes.HasPrefix(head, []byte{0x30, 0x26, 0xb2, 0x75}),     // asf
		len(head) >= 2 && head[0] == 0xff && head[1]&0xe0 == 0xe0: // mp3 / adts sync
		return true
	}
	return false
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// limitWriter keeps at most n bytes and drops the rest.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	n, err := l.w.Write(q)
	l.n -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}
