// Package miniotest starts a real MinIO server as a child process for tests
// of code that talks to S3. It is test support only: it must not be imported
// by production code, and it never fakes MinIO.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convilyn/turbolane/blobstore"
)

// startTimeout bounds how long Start waits for MinIO to report itself live;
// it normally takes one to three seconds.
const startTimeout = 60 * time.Second

// Start runs `minio server` on free loopback ports with a fresh data
// directory and random root credentials, waits until /minio/health/live
// answers, and stops the server (its whole process group) in t.Cleanup. The
// returned config names a bucket "test" that does not exist yet; NewS3
// creates it, and callers may change Bucket to isolate tests on one server.
// The binary is taken from $MINIO_BIN, then PATH, then $(go env GOPATH)/bin;
// when none exists the test fails and says how to install it.
func Start(t testing.TB) blobstore.S3Config {
	t.Helper()
	bin := findBinary(t)
	dataDir := t.TempDir()
	addr, consoleAddr := freeAddr(t), freeAddr(t)
	user, password := "minio-"+randomHex(t, 4), randomHex(t, 16)

	cmd := exec.Command(bin, "server", dataDir, "--address", addr, "--console-address", consoleAddr, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	// Own process group, so cleanup kills MinIO and anything it spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("miniotest: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	if err := waitLive(addr, exited, &waitErr); err != nil {
		t.Fatalf("miniotest: minio at %s did not become live: %v\noutput:\n%s", addr, err, out.String())
	}
	return blobstore.S3Config{
		Endpoint:  addr,
		Bucket:    "test",
		AccessKey: user,
		SecretKey: password,
		Region:    "us-east-1",
	}
}

func findBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("miniotest: MINIO_BIN=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	gopath := build.Default.GOPATH
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		gopath = strings.TrimSpace(string(out))
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("miniotest: no minio binary in $MINIO_BIN, PATH or %s/bin; run `make deps` to install it", gopath)
	return ""
}

// freeAddr asks the kernel for a free loopback port. Another process could
// take it before MinIO binds it; on loopback in tests that is rare enough.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("miniotest: random credentials: %v", err)
	}
	return hex.EncodeToString(b)
}

func waitLive(addr string, exited <-chan struct{}, waitErr *error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + "/minio/health/live"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited: %v", *waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no answer from %s within %s", url, startTimeout)
		case <-tick.C:
		}
	}
}

// syncBuffer collects MinIO's output from its pipe goroutines for the
// failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
