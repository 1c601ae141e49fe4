package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// process is a child process in its own process group that can be killed,
// paused and started again with the same arguments. Each incarnation's
// output is appended to one log file.
type process struct {
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	// outages records when an incarnation (pid) was killed or paused.
	outages []outage
	pids    []int // every incarnation
}

type outage struct {
	pid int
	at  time.Time
}

func newProcess(dir, name, bin string, env []string, args ...string) *process {
	return &process{name: name, bin: bin, args: args, env: env,
		log: filepath.Join(dir, name+".log")}
}

// start runs a new incarnation; it is an error if one is running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("start %s: already running", p.name)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: open log: %w", p.name, err)
	}
	fmt.Fprintf(out, "=== %s start %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd, p.done = nil, nil
		}
		p.mu.Unlock()
	}()
	p.cmd, p.done, p.paused = cmd, done, false
	p.pids = append(p.pids, cmd.Process.Pid)
	return nil
}

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// signal sends sig to the process group and, for SIGKILL and SIGTERM, waits
// until the process has exited (SIGTERM escalates to SIGKILL after grace).
func (p *process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	pid := cmd.Process.Pid
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
		p.outages = append(p.outages, outage{pid, time.Now()})
	case syscall.SIGCONT:
		p.paused = false
	case syscall.SIGKILL:
		p.outages = append(p.outages, outage{pid, time.Now()})
	}
	p.mu.Unlock()
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return nil
	}
	if sig == syscall.SIGTERM {
		_ = syscall.Kill(-pid, syscall.SIGCONT)
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		p.mu.Lock()
		p.outages = append(p.outages, outage{pid, time.Now()})
		p.mu.Unlock()
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not exit within %s of %s", p.name, grace, sig)
	}
}

func (p *process) kill() { _ = p.signal(syscall.SIGKILL, time.Minute) }

// outageBetween reports the latest time in (from, to) at which the
// incarnation with this pid was killed or paused.
func (p *process) outageBetween(pid int, from, to time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Time
	for _, o := range p.outages {
		if o.pid == pid && o.at.After(from) && o.at.Before(to) && o.at.After(last) {
			last = o.at
		}
	}
	return last, !last.IsZero()
}
