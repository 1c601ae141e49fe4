package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab, plus the list of JavaScript exceptions and
// console errors the page reported (read it after the test's steps).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s is missing (.ci/deps.sh installs Debian's chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var (
		mu       sync.Mutex
		problems []string
	)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
			mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				mu.Lock()
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
				mu.Unlock()
			}
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// step runs browser actions with a bound, so that a page that never reaches
// the awaited state fails the test instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func setSelect(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SetValue(chromedp.CSS(sel), value),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event("change", {bubbles: true}))`, sel)),
	)
}

// artifactPath is where the page's screenshot is kept: $TURBOLANE_ARTIFACTS
// or testdata/artifacts at the repository root.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("TURBOLANE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make artifacts dir: %v", err)
	}
	return filepath.Join(dir, name)
}

// TestWebPage drives the page at / in headless Chromium against the real
// server: one real conversion (JPEG → WebP) with its download under the
// page's session, the history, a batch of three files of which one is over
// the plan limit (the 413 detail is shown) and one is corrupt (the failed job
// shows its code), the ZIP, a delete, and screenshots kept as artifacts.
func TestWebPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	ctx, problems := browser(t)
	m := startServe(t, func(c *Config) { c.PlanLimits = "anonymous=64KiB" })

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	photo := write("photo.jpg", testJPEG(t, 96, 64))
	second := write("second.jpg", testJPEG(t, 48, 48))
	corrupt := write("broken.jpg", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte("not a jpeg "), 50)...))
	big := make([]byte, 100<<10)
	_, _ = rand.Read(big)
	tooBig := write("huge.jpg", big)

	// The page and its assets.
	res, err := http.Get(m.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}

	// Record any Content-Security-Policy violation from the first byte on.
	step(t, ctx, "watch for CSP violations", 10*time.Second, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
		})
		return chromedp.Void{}, err
	})
	step(t, ctx, "open the page", 30*time.Second,
		chromedp.Navigate(m.URL+"/"),
		chromedp.WaitReady(chromedp.CSS(`#processor option[value="image_conversion"]`)),
		chromedp.WaitReady(chromedp.CSS(`#history-status`)),
	)
	if s := text(t, ctx, "#limit"); !strings.Contains(s, "64 KiB") {
		t.Errorf("plan limit shown as %q", s)
	}

	// One real conversion.
	step(t, ctx, "choose the photo", 20*time.Second,
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{photo}),
		chromedp.WaitReady(chromedp.CSS(`#opt-output_format`)),
		setSelect("#processor", "image_conversion"),
		chromedp.WaitReady(chromedp.CSS(`#opt-quality[type=number][min="1"][max="100"]`)),
		chromedp.WaitReady(chromedp.CSS(`#opt-optimize[type=checkbox]`)),
		setSelect("#opt-output_format", "webp"),
		chromedp.WaitEnabled(chromedp.CSS("#start")),
		chromedp.Click(chromedp.CSS("#start")),
	)
	done := `#jobs li.job[data-file="photo.jpg"][data-status="completed"]`
	step(t, ctx, "wait for the job to complete", 90*time.Second, chromedp.WaitReady(chromedp.CSS(done+" a.download")))
	hrefRes, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(done+" a.download"), "href"))
	if err != nil || !hrefRes.Exists {
		t.Fatalf("download link: %v %+v", err, hrefRes)
	}
	jobRes, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(done), "data-job-id"))
	if err != nil || !strings.HasPrefix(jobRes.Value, "job_") {
		t.Fatalf("job id of the row: %v %+v", err, jobRes)
	}
	jobID := jobRes.Value

	// The link works with the page's session cookie and is a WebP.
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{m.URL + "/"}})
		return r.Cookies, err
	})
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, hrefRes.Value, nil)
	session := false
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		session = session || (c.Name == "tl_session" && c.HTTPOnly)
	}
	if !session {
		t.Errorf("no HttpOnly tl_session cookie in the browser: %+v", cookies)
	}
	dl, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("download %s: %v", hrefRes.Value, err)
	}
	webp, _ := io.ReadAll(dl.Body)
	_ = dl.Body.Close()
	if dl.StatusCode != http.StatusOK || len(webp) < 12 || string(webp[:4]) != "RIFF" || string(webp[8:12]) != "WEBP" {
		t.Fatalf("download %s: %d, %d bytes %q", hrefRes.Value, dl.StatusCode, len(webp), webp[:min(len(webp), 12)])
	}
	// Without the cookie the result is someone else's.
	anon, err := http.Get(hrefRes.Value)
	if err != nil {
		t.Fatal(err)
	}
	_ = anon.Body.Close()
	if anon.StatusCode != http.StatusNotFound {
		t.Errorf("download without the session: %d, want 404", anon.StatusCode)
	}

	step(t, ctx, "history shows the job", 30*time.Second,
		chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`#history tbody tr[data-job-id=%q][data-status="completed"] a.download`, jobID))))

	// Several files at once: a batch of the two that upload (a second photo
	// and a corrupt image) and a file over the plan limit whose 413 detail is
	// shown. The file input is reached with the keyboard.
	step(t, ctx, "choose three files", 20*time.Second,
		chromedp.Focus(chromedp.CSS("#file")),
		chromedp.WaitReady(chromedp.CSS("#drop:focus-within")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{second, corrupt, tooBig}),
		chromedp.WaitReady(chromedp.CSS(`#selected li:nth-child(3)`)),
		chromedp.WaitEnabled(chromedp.CSS("#start")),
		chromedp.Click(chromedp.CSS("#start")),
	)
	step(t, ctx, "the oversized upload fails", 60*time.Second,
		chromedp.WaitReady(chromedp.CSS(`#jobs li.job[data-file="huge.jpg"][data-status="failed"] .job-error:not([hidden])`)))
	if s := text(t, ctx, `#jobs li.job[data-file="huge.jpg"] .job-error`); !strings.Contains(s, "plan allows") || !strings.HasSuffix(s, "(file_too_large)") {
		t.Errorf("oversized upload shows %q, want the 413 detail and code", s)
	}
	step(t, ctx, "the batch's jobs finish", 90*time.Second,
		chromedp.WaitReady(chromedp.CSS(`#jobs li.job[data-file="broken.jpg"][data-status="failed"][data-job-id] .job-error:not([hidden])`)),
		chromedp.WaitReady(chromedp.CSS(`#jobs li.job[data-file="second.jpg"][data-status="completed"] a.download`)),
	)
	failed := text(t, ctx, `#jobs li.job[data-file="broken.jpg"] .job-error`)
	if !regexp.MustCompile(`\S.*\((corrupt_input|unsupported_format)\)$`).MatchString(failed) {
		t.Errorf("failed job shows %q, want its message and code", failed)
	}
	step(t, ctx, "history shows the failed job with retry", 30*time.Second,
		chromedp.WaitReady(chromedp.CSS(`#history tbody tr[data-status="failed"] button.retry`)))

	// The ZIP of the session's completed jobs.
	step(t, ctx, "download the ZIP", 30*time.Second,
		chromedp.WaitEnabled(chromedp.CSS("#zip")),
		chromedp.Click(chromedp.CSS("#zip")),
		chromedp.WaitVisible(chromedp.CSS("#alert.info")),
	)
	if s := text(t, ctx, "#alert"); !strings.Contains(s, "Saved 2 jobs as a ZIP") {
		t.Errorf("after the ZIP download the page says %q", s)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifactPath(t, "web.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	// A network failure is explained, not left blank: the browser blocks the
	// API for a moment and the history is refreshed.
	block := func(patterns ...string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return chromedp.Void{}, err
			}
			bp := []*network.BlockPattern{}
			for _, p := range patterns {
				bp = append(bp, &network.BlockPattern{URLPattern: p, Block: true})
			}
			_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: bp})
			return chromedp.Void{}, err
		}
	}
	step(t, ctx, "refresh the history offline", 30*time.Second,
		block(m.URL+"/api/v1/jobs*"),
		chromedp.Click(chromedp.CSS("#refresh")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#history-status").textContent.startsWith("Could not load the history")`),
	)
	if s := text(t, ctx, "#history-status"); !strings.Contains(s, "Could not reach the server") {
		t.Errorf("offline refresh shows %q", s)
	}
	step(t, ctx, "refresh the history online", 30*time.Second,
		block(),
		chromedp.Click(chromedp.CSS("#refresh")),
		chromedp.WaitNotVisible(chromedp.CSS("#history-status")),
	)

	// Retry the failed job from the history: it runs again (and fails again).
	step(t, ctx, "retry the failed job", 90*time.Second,
		chromedp.Click(chromedp.CSS(`#history tbody tr[data-status="failed"] button.retry`)),
		chromedp.WaitReady(chromedp.CSS(`#jobs li.job[data-file="broken.jpg"][data-retries="1"][data-status="failed"]`)),
		chromedp.WaitReady(chromedp.CSS(`#history tbody tr[data-status="failed"] button.retry`)),
	)

	// Delete the failed job from the history.
	step(t, ctx, "delete the failed job", 30*time.Second,
		chromedp.Click(chromedp.CSS(`#history tbody tr[data-status="failed"] button.delete`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#history tbody tr[data-status="failed"]`)),
		chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`#history tbody tr[data-job-id=%q]`, jobID))),
	)
	if s := text(t, ctx, "#page-info"); s != "2 jobs" {
		t.Errorf("after the delete the history says %q", s)
	}

	// A narrow screen.
	step(t, ctx, "narrow viewport", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	narrow, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(artifactPath(t, "web-narrow.png"), narrow, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || wide {
		t.Errorf("the page scrolls sideways on a narrow screen (%v)", err)
	}

	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil || len(csp) > 0 {
		t.Errorf("Content-Security-Policy violations: %v %v", csp, err)
	}
	if s := text(t, ctx, "#announce"); s == "" {
		t.Error("job completions are not announced to screen readers")
	}

	for _, p := range problems() {
		t.Errorf("page reported %s", p)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("browser context cancelled early")
	}
}
