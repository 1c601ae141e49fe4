package subprocess

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunCapturesStderrAndExitCode(t *testing.T) {
	_, err := Run(context.Background(), Cmd{Path: "sh", Args: []string{"-c", "echo boom >&2; exit 3"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 3 || !strings.Contains(ee.Error(), "boom") {
		t.Fatalf("want exit 3 with stderr, got %v", err)
	}
}

func TestRunStreamsLines(t *testing.T) {
	var out, errs []string
	_, err := Run(context.Background(), Cmd{Path: "sh", Args: []string{"-c", `printf 'a\nb\n'; printf 'p=1\rp=2\n' >&2`},
		OnStdoutLine: func(s string) { out = append(out, s) }, OnStderrLine: func(s string) { errs = append(errs, s) }})
	if err != nil || strings.Join(out, ",") != "a,b" || strings.Join(errs, ",") != "p=1,p=2" {
		t.Fatalf("lines: %v %v %v", err, out, errs)
	}
}

// TestCancelKillsTheWholeGroup starts a shell that forks a sleeping child,
// cancels, and checks that the child is gone too.
func TestCancelKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Cmd{Path: "sh", Args: []string{"-c", "sleep 300 & echo $! > " + pidFile + "; wait"}, Dir: dir})
		done <- err
	}()
	var pid int
	for i := 0; i < 200 && pid == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 1 {
			pid = atoi(strings.TrimSpace(string(b)))
		}
	}
	if pid == 0 {
		t.Fatal("child never started")
	}
	cancel()
	err := <-done
	var ee *ExitError
	if !errors.As(err, &ee) || !ee.Killed || !errors.Is(err, context.Canceled) {
		t.Fatalf("want a killed run, got %v", err)
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("grandchild %d survived the cancel", pid)
}

func TestMemoryLimit(t *testing.T) {
	// python3 is on every machine of this kind; allocate 512 MiB under a
	// 128 MiB address-space limit.
	_, err := Run(context.Background(), Cmd{Path: "python3", Args: []string{"-c", "b = bytearray(512 << 20)"}, MemoryLimit: 128 << 20})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode == 0 {
		t.Fatalf("allocation over the limit should fail, got %v", err)
	}
}

func TestNotInstalled(t *testing.T) {
	if _, err := Run(context.Background(), Cmd{Path: "no-such-program-turbolane"}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("want ErrNotInstalled, got %v", err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
