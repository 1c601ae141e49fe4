package subprocess

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cmd describes one run of an external program.
type Cmd struct {
	// Path is the program, looked up in PATH when it has no slash.
	Path string
	Args []string
	// Dir is the working directory (the job's work dir).
	Dir string
	// Env replaces the environment when not nil; nil keeps a minimal one
	// (PATH, HOME=Dir, LANG=C.UTF-8) so that programs do not read the
	// worker's secrets.
	Env []string
	// MemoryLimit bounds the address space (RLIMIT_AS, via prlimit) in
	// bytes; 0 leaves it unbounded.
	MemoryLimit int64
	// Stdin and Stdout are connected when not nil.
	Stdin  io.Reader
	Stdout io.Writer
	// OnStdoutLine and OnStderrLine receive each line as it is written
	// (for progress parsing); Stdout must be nil to use OnStdoutLine.
	OnStdoutLine func(string)
	OnStderrLine func(string)
	// StderrTail is how many bytes of stderr are kept for the error
	// message (default 4 KiB).
	StderrTail int
}

// ExitError is a run that ended unsuccessfully.
type ExitError struct {
	Program  string
	ExitCode int    // -1 when killed by a signal
	Signal   string // the signal name when killed
	Stderr   string // the tail of stderr
	// Killed is true when we killed the group (context cancelled or
	// deadline exceeded).
	Killed bool
	Err    error
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Program)
	switch {
	case e.Killed:
		b.WriteString(" was stopped")
	case e.Signal != "":
		b.WriteString(" was killed by " + e.Signal)
	default:
		b.WriteString(" exited with status " + strconv.Itoa(e.ExitCode))
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		b.WriteString(": ")
		b.WriteString(lastLines(s, 5))
	}
	return b.String()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ErrNotInstalled is returned when the program cannot be found.
var ErrNotInstalled = errors.New("program not installed")

// Run starts c, waits for it and returns the tail of its stderr. When ctx
// ends, the whole process group gets SIGKILL and Run returns an *ExitError
// with Killed set that wraps ctx's error.
func Run(ctx context.Context, c Cmd) (string, error) {
	path, err := exec.LookPath(c.Path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Path, ErrNotInstalled)
	}
	name, args := path, c.Args
	if c.MemoryLimit > 0 {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			return "", fmt.Errorf("prlimit (util-linux) for the memory limit: %w", ErrNotInstalled)
		}
		name, args = prlimit, append([]string{"--as=" + strconv.FormatInt(c.MemoryLimit, 10), "--", path}, c.Args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	if cmd.Env == nil {
		home := c.Dir
		if home == "" {
			home = "/tmp"
		}
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "TMPDIR=" + home}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the group, not just the child: soffice and ffmpeg fork helpers.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = c.Stdin

	tailSize := c.StderrTail
	if tailSize <= 0 {
		tailSize = 4 << 10
	}
	stderr := &tail{max: tailSize}
	var wg sync.WaitGroup
	var pipes []*io.PipeWriter
	// lines feeds a line scanner through a pipe; all pipes are closed
	// before waiting for the scanners, whatever order they were made in.
	lines := func(fn func(string)) io.Writer {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		wg.Add(1)
		go func() { defer wg.Done(); scanLines(pr, fn) }()
		return pw
	}
	defer func() {
		for _, pw := range pipes {
			_ = pw.Close()
		}
		wg.Wait()
	}()
	cmd.Stderr = stderr
	if c.OnStderrLine != nil {
		cmd.Stderr = io.MultiWriter(stderr, lines(c.OnStderrLine))
	}
	switch {
	case c.Stdout != nil:
		cmd.Stdout = c.Stdout
	case c.OnStdoutLine != nil:
		cmd.Stdout = lines(c.OnStdoutLine)
	}

	err = cmd.Run()
	// Make sure no straggler of the group survives a normal exit either.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err == nil {
		return stderr.String(), nil
	}
	ee := &ExitError{Program: c.Path, ExitCode: -1, Stderr: stderr.String(), Err: err}
	if ctx.Err() != nil {
		ee.Killed, ee.Err = true, ctx.Err()
		return ee.Stderr, ee
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ee.Signal = ws.Signal().String()
		} else {
			ee.ExitCode = xe.ExitCode()
		}
	}
	return ee.Stderr, ee
}

func scanLines(r io.Reader, fn func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanCRLF)
	for sc.Scan() {
		fn(sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// scanCRLF splits on \n or \r, since progress meters rewrite their line.
func scanCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
