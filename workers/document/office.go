package document

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/convilyn/turbolane/workers/subprocess"
)

// registryModifications is the profile's user configuration layer, written
// before every start: the highest macro security level and macro execution
// disabled altogether, so that no document macro (auto-run or bound to an
// event) ever runs; no recovery, no update checks, no first-start wizard.
const registryModifications = `<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="TrustedAuthors" oor:op="fuse"><value/></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="SecureURL" oor:op="fuse"><value/></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Recovery/AutoSave"><prop oor:name="Enabled" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Recovery/RecoveryInfo"><prop oor:name="Enabled" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Jobs/Jobs/org.openoffice.Office.Jobs:Job['UpdateCheck']/Arguments"><prop oor:name="AutoCheckEnabled" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
`

// errInstanceDown is a conversion sent to an instance that is not running.
var errInstanceDown = errors.New("LibreOffice instance is not running")

// instance is one long-lived LibreOffice process with its own profile.
//
// Conversions reach it without UNO: a second soffice started with the same
// -env:UserInstallation finds the running process's single-instance pipe,
// hands it the --convert-to request and waits until it is done. On
// LibreOffice 7.4 BenchmarkWarmVsCold measured 0.20 s per small docx→pdf
// against 3.7 s for a cold soffice --convert-to (18×, 2 cores, load 13). The
// running process is kept alive by a tiny document it holds open — without
// one, LibreOffice terminates after the first forwarded conversion. Only one
// conversion runs on an instance at a time (the pool hands it out
// exclusively).
type instance struct {
	id      int
	program string
	dir     string // instance root: profile/, keep.txt, the process's HOME
	url     string // file URL of the profile
	pipe    string // the single-instance pipe LibreOffice creates
	memory  int64

	conversions int  // since the last start
	started     bool // has run at least once

	mu     sync.Mutex
	lines  []string // the server's output since the last reset
	cancel context.CancelFunc
	done   chan struct{} // closed when the process has exited
	exit   error
}

func newInstance(id int, program, root string, memory int64) *instance {
	dir := filepath.Join(root, "office-"+strconv.Itoa(id))
	url := "file://" + filepath.ToSlash(filepath.Join(dir, "profile"))
	done := make(chan struct{})
	close(done)
	return &instance{id: id, program: program, dir: dir, url: url, pipe: pipePath(url), memory: memory, done: done}
}

// pipePath is where LibreOffice puts its single-instance pipe for a profile:
// /tmp/OSL_PIPE_<uid>_SingleOfficeIPC_<md5 of the UTF-16LE profile URL, each
// byte in hex without padding> (desktop/source/app/officeipcthread.cxx).
func pipePath(url string) string {
	var b []byte
	for _, r := range utf16.Encode([]rune(url)) {
		b = append(b, byte(r), byte(r>>8))
	}
	var h strings.Builder
	for _, c := range md5.Sum(b) {
		h.WriteString(strconv.FormatUint(uint64(c), 16))
	}
	return fmt.Sprintf("/tmp/OSL_PIPE_%d_SingleOfficeIPC_%s", os.Getuid(), h.String())
}

func (i *instance) alive() bool {
	select {
	case <-i.done:
		return false
	default:
		return true
	}
}

func (i *instance) line(s string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.lines) < 200 {
		i.lines = append(i.lines, s)
	}
}

func (i *instance) takeLines() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	l := i.lines
	i.lines = nil
	return l
}

// start launches the process under life (the engine's lifetime), waits
// for it to be ready and runs a warm-up conversion, so that the first job
// does not pay for the start. The wait ends early when parent ends.
func (i *instance) start(life, parent context.Context, timeout time.Duration) error {
	if err := os.MkdirAll(filepath.Join(i.dir, "profile", "user"), 0o700); err != nil {
		return fmt.Errorf("create LibreOffice profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(i.dir, "profile", "user", "registrymodifications.xcu"), []byte(registryModifications), 0o600); err != nil {
		return fmt.Errorf("write LibreOffice profile settings: %w", err)
	}
	keep := filepath.Join(i.dir, "keep.txt")
	if err := os.WriteFile(keep, []byte("turbolane\n"), 0o600); err != nil {
		return fmt.Errorf("write LibreOffice keep-alive document: %w", err)
	}
	// A stale pipe or lock file of a killed process would fool the wait
	// below.
	_ = os.Remove(i.pipe)
	lock := filepath.Join(i.dir, ".~lock.keep.txt#")
	_ = os.Remove(lock)

	ctx, cancel := context.WithCancel(life)
	done := make(chan struct{})
	i.mu.Lock()
	i.cancel, i.done, i.exit, i.lines, i.conversions = cancel, done, nil, nil, 0
	i.mu.Unlock()
	go func() {
		defer close(done)
		_, err := subprocess.Run(ctx, subprocess.Cmd{
			Path: i.program,
			Args: []string{
				"-env:UserInstallation=" + i.url,
				"--headless", "--invisible", "--nologo", "--norestore", "--nofirststartwizard", "--nolockcheck",
				keep,
			},
			Dir:          i.dir,
			MemoryLimit:  i.memory,
			OnStdoutLine: i.line,
			OnStderrLine: i.line,
		})
		i.mu.Lock()
		i.exit = err
		i.mu.Unlock()
	}()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// Wait for the pipe and for the keep-alive document's lock file: a
	// conversion forwarded before that document is open would be the
	// process's only task, and it terminates when that is done.
	for {
		if _, err := os.Stat(i.pipe); err == nil {
			if _, err := os.Stat(lock); err == nil {
				break
			}
		}
		select {
		case <-done:
			i.mu.Lock()
			err := i.exit
			i.mu.Unlock()
			return fmt.Errorf("start LibreOffice instance %d: exited early: %v", i.id, err)
		case <-deadline.C:
			i.stop()
			return fmt.Errorf("start LibreOffice instance %d: not ready after %s", i.id, timeout)
		case <-parent.Done():
			i.stop()
			return fmt.Errorf("start LibreOffice instance %d: %w", i.id, parent.Err())
		case <-tick.C:
		}
	}
	wctx, wcancel := context.WithTimeout(parent, timeout)
	defer wcancel()
	warm := filepath.Join(i.dir, "warmup")
	_ = os.RemoveAll(warm)
	if err := os.MkdirAll(warm, 0o700); err != nil {
		i.stop()
		return fmt.Errorf("create warm-up dir: %w", err)
	}
	probe := filepath.Join(i.dir, "warmup.txt")
	if err := os.WriteFile(probe, []byte("warm-up\n"), 0o600); err != nil {
		i.stop()
		return fmt.Errorf("write warm-up document: %w", err)
	}
	if err := i.convert(wctx, probe, warm, "pdf:writer_pdf_Export", ""); err != nil {
		i.stop()
		return fmt.Errorf("warm up LibreOffice instance %d: %w", i.id, err)
	}
	if _, err := os.Stat(filepath.Join(warm, "warmup.pdf")); err != nil {
		i.stop()
		return fmt.Errorf("warm up LibreOffice instance %d: no output: %s", i.id, strings.Join(i.takeLines(), " | "))
	}
	_ = os.RemoveAll(warm)
	i.takeLines()
	i.conversions = 0
	i.started = true
	return nil
}

// stop kills the process group and waits for it.
func (i *instance) stop() {
	i.mu.Lock()
	cancel, done := i.cancel, i.done
	i.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	<-done
	_ = os.Remove(i.pipe)
}

// convert hands one --convert-to request to the running process and returns
// the process's messages about it. It returns errInstanceDown when the
// process is not running (then no second, cold LibreOffice is started).
func (i *instance) convert(ctx context.Context, src, outDir, convertTo, infilter string) error {
	if !i.alive() {
		return errInstanceDown
	}
	if _, err := os.Stat(i.pipe); err != nil {
		return errInstanceDown
	}
	i.conversions++
	args := []string{"-env:UserInstallation=" + i.url, "--headless", "--invisible", "--nologo", "--norestore"}
	if infilter != "" {
		args = append(args, "--infilter="+infilter)
	}
	args = append(args, "--convert-to", convertTo, "--outdir", outDir, src)
	_, err := subprocess.Run(ctx, subprocess.Cmd{Path: i.program, Args: args, Dir: i.dir, MemoryLimit: i.memory})
	if err != nil {
		return fmt.Errorf("hand the conversion to LibreOffice: %w", err)
	}
	return nil
}
