package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// cliResult is what one in-process CLI invocation printed and returned.
type cliResult struct {
	Stdout, Stderr string
	Err            error
}

// runCLI runs the CLI's entry function in-process, as `turbolane args...`.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

func (r cliResult) mustSucceed(t *testing.T) cliResult {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("want success, got %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
	}
	return r
}

// mustFail checks that the command failed with every want in its error.
func (r cliResult) mustFail(t *testing.T, want ...string) cliResult {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("want failure, got success\nstdout: %s\nstderr: %s", r.Stdout, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Err.Error(), w) {
			t.Fatalf("error %q does not mention %q\nstderr: %s", r.Err, w, r.Stderr)
		}
	}
	if strings.Contains(r.Err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", r.Err)
	}
	return r
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func isWebP(b []byte) bool {
	return len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

// TestCLIConvert runs `turbolane convert` against a real server with no
// flags besides --server: one file, a batch fetched as one ZIP, a job that
// fails, and every bad input the CLI must explain in one line.
func TestCLIConvert(t *testing.T) {
	m := startServe(t, func(c *Config) { c.PlanLimits = "anonymous=64KiB" })
	dir := t.TempDir()
	jpg := testJPEG(t, 64, 48)

	t.Run("one file", func(t *testing.T) {
		in := writeFile(t, dir, "photo.jpg", jpg)
		r := runCLI(t, "convert", in, "--to", "webp", "--param", "quality=80", "--server", m.URL).mustSucceed(t)
		out := filepath.Join(dir, "photo.webp")
		b, err := os.ReadFile(out)
		if err != nil || !isWebP(b) {
			t.Fatalf("result %s: %v, webp %v\nstdout: %s", out, err, isWebP(b), r.Stdout)
		}
		if !strings.Contains(r.Stdout, out) {
			t.Errorf("stdout does not name the result: %s", r.Stdout)
		}
		// Bars go to stderr, as plain lines when it is not a terminal.
		for _, want := range []string{"upload photo.jpg", "100%", "completed"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr lacks %q: %q", want, r.Stderr)
			}
		}
		if strings.Contains(r.Stderr, "\r") || strings.Contains(r.Stdout, "%|") {
			t.Errorf("redraws on a non-terminal or bars on stdout:\nstderr %q\nstdout %q", r.Stderr, r.Stdout)
		}
	})

	t.Run("batch as one zip", func(t *testing.T) {
		a := writeFile(t, dir, "a.jpg", jpg)
		b := writeFile(t, dir, "b.jpg", testJPEG(t, 32, 32))
		out := filepath.Join(dir, "zipped")
		r := runCLI(t, "convert", a, b, "--to", "webp", "--zip", "--out", out, "--server", m.URL).mustSucceed(t)
		zr, err := zip.OpenReader(filepath.Join(out, "turbolane-results.zip"))
		if err != nil {
			t.Fatalf("open zip: %v\nstdout: %s", err, r.Stdout)
		}
		defer zr.Close()
		var webps []string
		var manifest struct {
			Included []json.RawMessage `json:"included"`
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(rc)
			rc.Close()
			switch {
			case f.Name == "manifest.json":
				if err := json.Unmarshal(buf.Bytes(), &manifest); err != nil {
					t.Fatalf("manifest: %v", err)
				}
			case isWebP(buf.Bytes()):
				webps = append(webps, f.Name)
			}
		}
		if len(webps) != 2 || len(manifest.Included) != 2 {
			t.Fatalf("zip holds webps %v, manifest includes %d", webps, len(manifest.Included))
		}
		if _, err := os.Stat(filepath.Join(dir, "a.webp")); err == nil {
			t.Error("--zip also downloaded the files one by one")
		}
	})

	t.Run("failed job", func(t *testing.T) {
		in := writeFile(t, dir, "notes.jpg", []byte("this is text, not a JPEG\n"))
		r := runCLI(t, "convert", in, "--to", "webp", "--server", m.URL).mustFail(t, "1 of 1 jobs failed", "unsupported_format")
		if !strings.Contains(r.Stderr, "unsupported_format: ") || !strings.Contains(r.Stderr, "failed") {
			t.Fatalf("stderr lacks the job's code and message: %s", r.Stderr)
		}
	})

	t.Run("unsupported format", func(t *testing.T) {
		in := writeFile(t, dir, "pic.jpg", jpg)
		// The catalog says no processor writes docx from a jpg: refused before uploading.
		r := runCLI(t, "convert", in, "--to", "docx", "--server", m.URL).mustFail(t, "unsupported format", ".jpg to docx")
		if strings.Contains(r.Stderr, "upload") {
			t.Errorf("uploaded although nothing converts it: %s", r.Stderr)
		}
		// Forcing the processor lets the server say why, with its detail.
		runCLI(t, "convert", in, "--to", "docx", "--processor", "image_conversion", "--server", m.URL).
			mustFail(t, "422 unsupported_format", `"docx" is not supported`)
	})

	t.Run("too large", func(t *testing.T) {
		big := make([]byte, 100<<10)
		_, _ = rand.Read(big)
		in := writeFile(t, dir, "big.jpg", big)
		runCLI(t, "convert", in, "--to", "webp", "--server", m.URL).mustFail(t, "413 file_too_large", "at most 65536 bytes")
	})

	t.Run("bad key", func(t *testing.T) {
		in := writeFile(t, dir, "key.jpg", jpg)
		runCLI(t, "convert", in, "--to", "webp", "--server", m.URL, "--api-key", "not-a-key").mustFail(t, "401", "not accepted")
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close()
		in := writeFile(t, dir, "far.jpg", jpg)
		r := runCLI(t, "convert", in, "--to", "webp", "--server", url).mustFail(t)
		if !strings.HasPrefix(r.Err.Error(), "cannot reach Turbo Lane at "+url+": ") {
			t.Fatalf("unreachable: %q", r.Err)
		}
	})

	t.Run("anonymous session kept with --session", func(t *testing.T) {
		session := filepath.Join(t.TempDir(), "session.json")
		in := writeFile(t, dir, "kept.jpg", jpg)
		runCLI(t, "convert", in, "--to", "png", "--server", m.URL, "--session", session).mustSucceed(t)
		out := runCLI(t, "jobs", "list", "--server", m.URL, "--session", session).mustSucceed(t).Stdout
		if !strings.Contains(out, "kept.png") || !strings.Contains(out, "1 jobs in all") {
			t.Fatalf("the session's jobs:\n%s", out)
		}
		if out := runCLI(t, "jobs", "list", "--server", m.URL).mustSucceed(t).Stdout; !strings.Contains(out, "0 jobs in all") {
			t.Fatalf("a fresh session sees jobs:\n%s", out)
		}
		if st, err := os.Stat(session); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("session file: %v %v", st, err)
		}
	})

	t.Run("env and usage", func(t *testing.T) {
		t.Setenv("TURBOLANE_SERVER", m.URL)
		in := writeFile(t, dir, "env.jpg", jpg)
		runCLI(t, "convert", in, "--to", "webp").mustSucceed(t)
		runCLI(t, "convert", "--to", "webp").mustFail(t, "at least one FILE")
		runCLI(t, "convert", in).mustFail(t, "--to FORMAT is required")
		runCLI(t, "convert", filepath.Join(dir, "missing.jpg"), "--to", "webp").mustFail(t, "no such file")
	})
}

func TestTypedParams(t *testing.T) {
	t.Parallel()
	p := paramFlags{}
	for _, kv := range []string{"quality=80", "lossless=true", "optimize=false", "start=12.5", "pages=1-3,5", "password=\"1234\"", "text=a=b"} {
		if err := p.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	want := paramFlags{"quality": int64(80), "lossless": true, "optimize": false, "start": 12.5, "pages": "1-3,5", "password": "1234", "text": "a=b"}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("params %#v", p)
	}
	if err := p.Set("novalue"); err == nil {
		t.Fatal("a --param without = must fail")
	}
}

// TestChooseProcessor infers from the real catalog (domain.Specs), as if
// every engine were installed, and from the catalog as it is now.
func TestChooseProcessor(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(map[string]any{"processors": domain.Specs()})
	if err != nil {
		t.Fatal(err)
	}
	var now, all cliCatalog
	if err := json.Unmarshal(b, &now); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &all)
	for i := range all.Processors {
		all.Processors[i].Available = true
	}
	tests := []struct {
		ext, to, forced string
		want, op        string
	}{
		{ext: "jpg", to: "webp", want: "image_conversion"},
		{ext: "heic", to: "jpg", want: "image_conversion"},
		{ext: "png", to: "png", forced: "image_compression", want: "image_compression"},
		{ext: "docx", to: "pdf", want: "document_conversion"},
		{ext: "png", to: "txt", want: "ocr_processing"},
		{ext: "pdf", to: "txt", want: "ocr_processing"},
		{ext: "pdf", to: "pdf", want: "pdf_operations", op: "compress"},
		{ext: "pdf", to: "json", want: "pdf_operations", op: "info"},
		{ext: "wav", to: "srt", want: "audio_transcription"},
		{ext: "mp4", to: "vtt", want: "video_transcription"},
		{ext: "mp4", to: "mp3", want: "media_processing", op: "extract_audio"},
		{ext: "wav", to: "mp3", want: "media_processing", op: "transcode"},
		{ext: "mov", to: "png", want: "media_processing", op: "thumbnail"},
		{ext: "jpg", to: "docx"},
		{ext: "xyz", to: "webp"},
		{ext: "jpg", to: "webp", forced: "nope"},
	}
	for _, tc := range tests {
		p, err := chooseProcessor(all, tc.forced, tc.ext, tc.to)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s→%s (%q): chose %s, want an error", tc.ext, tc.to, tc.forced, p.ProcessorType)
			}
			continue
		}
		if err != nil || p.ProcessorType != tc.want {
			t.Errorf("%s→%s: got %s %v, want %s", tc.ext, tc.to, p.ProcessorType, err, tc.want)
			continue
		}
		if op, _ := jobParams(p, tc.ext, tc.to, paramFlags{})["operation"].(string); op != tc.op {
			t.Errorf("%s→%s: operation %q, want %q", tc.ext, tc.to, op, tc.op)
		}
	}
	if op := jobParams(mustProcessor(t, all, "media_processing"), "mp4", "mp4", paramFlags{"operation": "trim"})["operation"]; op != "trim" {
		t.Errorf("a --param operation must win, got %v", op)
	}
	// A processor the server cannot run is named, not silently skipped.
	for i := range now.Processors {
		now.Processors[i].Available = now.Processors[i].ProcessorType != "document_conversion"
	}
	if _, err := chooseProcessor(now, "", "docx", "pdf"); err == nil || !strings.Contains(err.Error(), "document_conversion converts .docx to pdf but is not available") {
		t.Errorf("unavailable processor: %v", err)
	}
	// An unavailable first choice gives way to an available one.
	for i := range now.Processors {
		now.Processors[i].Available = now.Processors[i].ProcessorType != "pdf_operations"
	}
	if p, err := chooseProcessor(now, "", "pdf", "pdf"); err != nil || p.ProcessorType != "ocr_processing" {
		t.Errorf("pdf→pdf without pdf_operations: %s %v", p.ProcessorType, err)
	}
}

func mustProcessor(t *testing.T, cat cliCatalog, name string) cliProcessor {
	t.Helper()
	p, err := chooseProcessor(cat, name, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResultPathNeverOverwritesTheInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "a.jpg")
	if got := resultPath(in, "", "a.jpg"); got == in || filepath.Dir(got) != dir {
		t.Fatalf("result over the input: %s", got)
	}
	if got := resultPath(in, "/out", "../../etc/a.webp"); got != "/out/a.webp" {
		t.Fatalf("result escapes --out: %s", got)
	}
}

// TestCLIConvertWaitsOutRateLimit polls a server whose abuse protection
// allows a burst of three requests and then one every two seconds: the polls
// and the download that meet 429 wait for Retry-After and go on.
func TestCLIConvertWaitsOutRateLimit(t *testing.T) {
	m := startServe(t, func(c *Config) { c.RateLimit, c.RateBurst = 0.5, 3 })
	in := writeFile(t, t.TempDir(), "slow.jpg", testJPEG(t, 32, 24))
	runCLI(t, "convert", in, "--to", "webp", "--server", m.URL).mustSucceed(t)
	if b, err := os.ReadFile(strings.TrimSuffix(in, ".jpg") + ".webp"); err != nil || !isWebP(b) {
		t.Fatalf("result: %v", err)
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	to := fs.String("to", "", "")
	zip := fs.Bool("zip", false, "")
	pos, err := parseInterspersed(fs, []string{"a.jpg", "--to", "webp", "b.jpg", "--zip", "--", "--c.jpg", "-d"})
	if err != nil || *to != "webp" || !*zip || !reflect.DeepEqual(pos, []string{"a.jpg", "b.jpg", "--c.jpg", "-d"}) {
		t.Fatalf("pos %q to %q zip %v err %v", pos, *to, *zip, err)
	}
}
