package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers/subprocess"
)

// Run runs ffmpeg on one input with the safe input options. pre go before
// -i (seeking), post after it (codecs, filters); out is the output path.
// When progress is not nil it receives the output position in seconds as
// ffmpeg reports it. maxBytes > 0 bounds the output with -fs and turns an
// output that reached it into input_too_large. Errors carry the contract's
// codes; a cancelled ctx returns the context's error.
func Run(ctx context.Context, in string, pre, post []string, out string, memLimit, maxBytes int64, progress func(sec float64)) error {
	args := []string{"-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats"}
	args = append(args, SafeInputArgs()...)
	args = append(args, pre...)
	args = append(args, "-i", FileURL(in))
	args = append(args, post...)
	if maxBytes > 0 {
		args = append(args, "-fs", strconv.FormatInt(maxBytes, 10))
	}
	if progress != nil {
		args = append(args, "-progress", "pipe:1")
	}
	args = append(args, FileURL(out))
	cmd := subprocess.Cmd{Path: "ffmpeg", Args: args, MemoryLimit: memLimit}
	if progress != nil {
		cmd.OnStdoutLine = func(line string) {
			if v, ok := strings.CutPrefix(line, "out_time_us="); ok {
				if us, err := strconv.ParseInt(v, 10, 64); err == nil && us >= 0 {
					progress(float64(us) / 1e6)
				}
			}
		}
	}
	if _, err := subprocess.Run(ctx, cmd); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, subprocess.ErrNotInstalled) {
			return fmt.Errorf("run ffmpeg: %w", err)
		}
		return ffmpegFailure(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		return domain.Failf(domain.CodeProcessorError, "ffmpeg wrote no output")
	}
	if maxBytes > 0 && st.Size() >= maxBytes {
		return domain.Failf(domain.CodeInputTooLarge, "the result reached the output limit of %d bytes", maxBytes)
	}
	if st.Size() == 0 {
		return domain.Failf(domain.CodeCorruptInput, "ffmpeg produced an empty result; the input has no decodable data there")
	}
	return nil
}

var corruptRe = regexp.MustCompile(`(?i)invalid data found|corrupt|truncat|moov atom not found|error while decoding|invalid nal|partial file|end of file|no frame`)

// ffmpegFailure maps an ffmpeg exit to an error code from its stderr.
func ffmpegFailure(err error) error {
	var ee *subprocess.ExitError
	msg := err.Error()
	stderr := ""
	if errors.As(err, &ee) {
		stderr = ee.Stderr
		if ee.Signal != "" {
			return domain.Failf(domain.CodeProcessorError, "ffmpeg was killed by %s (memory limit?): %s", ee.Signal, lastLine(stderr))
		}
	}
	switch {
	case corruptRe.MatchString(stderr):
		return domain.Failf(domain.CodeCorruptInput, "ffmpeg cannot decode the input: %s", lastLine(stderr))
	case strings.Contains(stderr, "Cannot allocate memory") || strings.Contains(stderr, "out of memory"):
		return domain.Failf(domain.CodeInputTooLarge, "ffmpeg ran out of memory: %s", lastLine(stderr))
	}
	return domain.Failf(domain.CodeProcessorError, "%s", msg)
}

// ExtractWAV writes the first audio track of in (from start, for dur seconds
// when dur > 0) to out as 16 kHz mono 16-bit PCM WAV with a plain 44-byte
// header, the form speech recognisers read.
func ExtractWAV(ctx context.Context, in, out string, start, dur float64, memLimit int64) error {
	var pre []string
	if start > 0 {
		pre = append(pre, "-ss", formatSeconds(start))
	}
	if dur > 0 {
		pre = append(pre, "-t", formatSeconds(dur))
	}
	post := []string{"-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le",
		"-map_metadata", "-1", "-bitexact", "-f", "wav"}
	return Run(ctx, in, pre, post, out, memLimit, 0, nil)
}

func formatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }
