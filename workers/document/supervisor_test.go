package document

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// officePID finds the soffice.bin serving inst, by its unique profile URL.
func officePID(t *testing.T, inst *instance) int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if len(args) > 0 && strings.HasSuffix(string(args[0]), "soffice.bin") &&
			bytes.Contains(cmdline, []byte("-env:UserInstallation="+inst.url+"\x00")) {
			return pid
		}
	}
	t.Fatalf("no soffice.bin for %s", inst.url)
	return 0
}

func TestRestartAfterN(t *testing.T) {
	e := newEngine(t, WithRestartAfter(2), WithLazyStart())
	require.False(t, e.all[0].alive(), "a lazy engine starts LibreOffice at the first conversion")
	txt := writeFile(t, "a.txt", "restart me\n")
	_, err := convert(t, e, txt, "a.txt", "pdf")
	require.NoError(t, err)
	pid := officePID(t, e.all[0])
	_, err = convert(t, e, txt, "a.txt", "pdf")
	require.NoError(t, err)
	// The second conversion sent the instance to a restart; the third
	// waits for it and runs on the new process.
	out, err := convert(t, e, txt, "a.txt", "pdf")
	require.NoError(t, err)
	require.Contains(t, pdfText(t, out.Path), "restart me")
	require.EqualValues(t, 1, e.Restarts())
	require.NotEqual(t, pid, officePID(t, e.all[0]))
}

func TestCrashedInstanceIsReplaced(t *testing.T) {
	e := shared(t)
	txt := writeFile(t, "a.txt", "after the crash\n")
	_, err := convert(t, e, txt, "a.txt", "pdf")
	require.NoError(t, err)
	before := e.Restarts()
	inst := e.all[0]
	require.NoError(t, syscall.Kill(officePID(t, inst), syscall.SIGKILL))
	select {
	case <-inst.done:
	case <-time.After(time.Minute):
		t.Fatal("the killed instance did not exit")
	}
	out, err := convert(t, e, txt, "a.txt", "pdf")
	require.NoError(t, err)
	require.Contains(t, pdfText(t, out.Path), "after the crash")
	require.Greater(t, e.Restarts(), before)
}

func TestTimeoutKillsAndRestarts(t *testing.T) {
	e := shared(t)
	var big strings.Builder
	for i := range 40000 {
		big.WriteString("line " + strconv.Itoa(i) + " of a long document that takes a while to lay out\n")
	}
	src := writeFile(t, "big.txt", big.String())
	fi, err := os.Stat(src)
	require.NoError(t, err)
	before := e.Restarts()
	pid := officePID(t, e.all[0])

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = e.Process(ctx, inputFor(t, src, "big.txt", fi.Size(), "pdf"))
	require.True(t, errors.Is(err, context.DeadlineExceeded), "want the deadline, got %v", err)

	small := writeFile(t, "a.txt", "after the timeout\n")
	out, err := convert(t, e, small, "a.txt", "pdf")
	require.NoError(t, err)
	require.Contains(t, pdfText(t, out.Path), "after the timeout")
	require.Greater(t, e.Restarts(), before)
	require.NotEqual(t, pid, officePID(t, e.all[0]))
}

func TestConcurrentConversionsOnTwoInstances(t *testing.T) {
	e := newEngine(t, WithInstances(2), WithLazyStart())
	errs := make(chan error, 4)
	for n := range 4 {
		go func() {
			src := writeFile(t, "c.txt", "concurrent "+strconv.Itoa(n)+"\n")
			fi, err := os.Stat(src)
			if err != nil {
				errs <- err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			outs, err := e.Process(ctx, inputFor(t, src, "c.txt", fi.Size(), "txt"))
			if err == nil {
				var b []byte
				b, err = os.ReadFile(outs[0].Path)
				if err == nil && !strings.Contains(string(b), "concurrent "+strconv.Itoa(n)) {
					err = errors.New("wrong text: " + string(b))
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	require.True(t, e.all[0].alive() && e.all[1].alive(), "both instances served")
	require.NotEqual(t, officePID(t, e.all[0]), officePID(t, e.all[1]))
	require.Zero(t, e.Restarts())
}
