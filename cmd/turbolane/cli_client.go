package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// defaultServer is the API the CLI talks to when neither --server nor
// TURBOLANE_SERVER says otherwise: the embedded default of `turbolane serve`.
const defaultServer = "http://127.0.0.1:8080"

// ErrUnreachable is returned when the server cannot be reached at all.
var ErrUnreachable = errors.New("cannot reach Turbo Lane")

// apiError is an error response of the API: {detail, code} and its status.
type apiError struct {
	Status     int
	Code       string
	Detail     string
	RetryAfter time.Duration // from Retry-After on 429
}

func (e *apiError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("the API key was not accepted (401 %s): %s", e.Code, e.Detail)
	case http.StatusForbidden:
		return fmt.Sprintf("not allowed (403 %s): %s", e.Code, e.Detail)
	case http.StatusRequestEntityTooLarge:
		return fmt.Sprintf("file too large for your plan (413 %s): %s", e.Code, e.Detail)
	case http.StatusUnprocessableEntity:
		return fmt.Sprintf("rejected (422 %s): %s", e.Code, e.Detail)
	}
	return fmt.Sprintf("%s (%d %s)", e.Detail, e.Status, e.Code)
}

// apiClient talks to one Turbo Lane server for one CLI invocation. Its cookie
// jar keeps an anonymous session across the requests of that invocation.
type apiClient struct {
	base string
	key  string
	http *http.Client
	// session, when set, is a file that keeps the anonymous session's
	// cookie between invocations (--session).
	session string
	saved   string
	baseURL *url.URL
}

// clientFlags registers --server and --api-key (defaults from
// TURBOLANE_SERVER and TURBOLANE_API_KEY) and returns a constructor for the
// client once the flags are parsed.
func clientFlags(fs *flag.FlagSet) func() (*apiClient, error) {
	server := fs.String("server", envOr("TURBOLANE_SERVER", defaultServer), "base URL of the Turbo Lane server (env TURBOLANE_SERVER)")
	key := fs.String("api-key", os.Getenv("TURBOLANE_API_KEY"), "API key, or the admin token for events (env TURBOLANE_API_KEY)")
	session := fs.String("session", os.Getenv("TURBOLANE_SESSION"), "file that keeps the anonymous session between commands (env TURBOLANE_SESSION; default: one session per command)")
	return func() (*apiClient, error) {
		c, err := newAPIClient(*server, *key)
		if err != nil || *session == "" {
			return c, err
		}
		return c, c.loadSession(*session)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newAPIClient(server, key string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("create cookie jar: %w", err)
	}
	// No overall timeout: uploads and downloads of large files take as long
	// as they take; every request carries the command's ctx instead.
	hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		// net/http keeps Authorization on a redirect to the same host name
		// even on another port, but a presigned MinIO/S3 URL must not carry
		// the bearer too: S3 refuses two kinds of authentication at once.
		if req.URL.Host != u.Host {
			req.Header.Del("Authorization")
		}
		return nil
	}}
	return &apiClient{base: u.String(), baseURL: u, key: key, http: hc}, nil
}

// sessionCookie is what --session stores: the cookies the server set.
type sessionCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (c *apiClient) loadSession(path string) error {
	c.session = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read --session file: %w", err)
	}
	var saved map[string][]sessionCookie
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("read --session file %s: %w", path, err)
	}
	var cookies []*http.Cookie
	for _, sc := range saved[c.base] {
		cookies = append(cookies, &http.Cookie{Name: sc.Name, Value: sc.Value})
	}
	c.http.Jar.SetCookies(c.baseURL, cookies)
	c.saved = string(b)
	return nil
}

// saveSession writes the jar's cookies for the server to the --session file
// when they changed. Other servers' sessions in the file are kept.
func (c *apiClient) saveSession() error {
	if c.session == "" {
		return nil
	}
	saved := map[string][]sessionCookie{}
	if c.saved != "" {
		_ = json.Unmarshal([]byte(c.saved), &saved)
	}
	var cur []sessionCookie
	for _, ck := range c.http.Jar.Cookies(c.baseURL) {
		cur = append(cur, sessionCookie{Name: ck.Name, Value: ck.Value})
	}
	saved[c.base] = cur
	b, err := json.Marshal(saved)
	if err != nil || string(b) == c.saved {
		return err
	}
	if err := os.WriteFile(c.session, b, 0o600); err != nil {
		return fmt.Errorf("write --session file: %w", err)
	}
	c.saved = string(b)
	return nil
}

// maxRateRetries is how often a request without a body is sent again after
// a 429, waiting as long as Retry-After says (at most maxRateWait).
const (
	maxRateRetries = 5
	maxRateWait    = 30 * time.Second
)

// do sends one request and returns the response when it is 2xx; any other
// status becomes an *apiError carrying the server's detail. A request
// without a body (polls, lists, downloads) that meets the server's abuse
// protection (429) waits as long as Retry-After asks and tries again.
func (c *apiClient) do(ctx context.Context, method, path string, body io.Reader, contentType string, size int64) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		res, err := c.doOnce(ctx, method, path, body, contentType, size)
		var ae *apiError
		if body != nil || attempt >= maxRateRetries || !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			return res, err
		}
		wait := min(max(ae.RetryAfter, time.Second), maxRateWait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *apiClient) doOnce(ctx context.Context, method, path string, body io.Reader, contentType string, size int64) (*http.Response, error) {
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, c.base, unwrapURLError(err))
	}
	if err := c.saveSession(); err != nil {
		res.Body.Close()
		return nil, err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	return nil, decodeAPIError(res)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeAPIError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &apiError{Status: res.StatusCode}
	if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	var body struct{ Detail, Code string }
	if json.Unmarshal(b, &body) == nil && body.Detail != "" {
		e.Code, e.Detail = body.Code, body.Detail
	} else {
		// Not our API (a proxy, or S3 behind a presigned URL): one line of
		// what it said.
		e.Code = "http_" + fmt.Sprint(res.StatusCode)
		e.Detail = http.StatusText(res.StatusCode)
		var s3 struct{ Code, Message string }
		if xml.Unmarshal(b, &s3) == nil && s3.Message != "" {
			e.Detail = fmt.Sprintf("storage refused: %s (%s)", s3.Message, s3.Code)
		} else if line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); line != "" {
			e.Detail = line
		}
	}
	return e
}

// call sends a JSON body (nil for none) and decodes a JSON answer into out
// (nil to discard it). It returns the raw answer for --json.
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	var ct string
	size := int64(-1)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body, ct, size = bytes.NewReader(b), "application/json", int64(len(b))
	}
	res, err := c.do(ctx, method, path, body, ct, size)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// The API's shapes, as far as the CLI reads them.
type (
	cliFile struct {
		FileID   string `json:"fileId"`
		FileName string `json:"fileName"`
		FileSize int64  `json:"fileSize"`
		MimeType string `json:"mimeType"`
	}
	cliResultFile struct {
		FileID      string `json:"fileId"`
		FileName    string `json:"fileName"`
		MimeType    string `json:"mimeType"`
		SizeBytes   int64  `json:"sizeBytes"`
		DownloadURL string `json:"downloadUrl"`
	}
	cliJobError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	cliJob struct {
		JobID             string          `json:"jobId"`
		UserID            string          `json:"userId"`
		Status            string          `json:"status"`
		ProcessorType     string          `json:"processorType"`
		Progress          int             `json:"progress"`
		ProgressMessage   string          `json:"progressMessage"`
		Params            map[string]any  `json:"params"`
		ResultFiles       []cliResultFile `json:"resultFiles"`
		Error             *cliJobError    `json:"error"`
		RetryCount        int             `json:"retryCount"`
		CreatedAt         string          `json:"createdAt"`
		UpdatedAt         string          `json:"updatedAt"`
		StartedAt         *string         `json:"startedAt"`
		CompletedAt       *string         `json:"completedAt"`
		EstimatedDuration *float64        `json:"estimatedDuration"`
	}
	cliJobList struct {
		Jobs       []cliJob `json:"jobs"`
		Pagination struct {
			Page       int `json:"page"`
			Limit      int `json:"limit"`
			Total      int `json:"total"`
			TotalPages int `json:"totalPages"`
		} `json:"pagination"`
	}
	cliParamSpec struct {
		Name string `json:"name"`
	}
	cliProcessor struct {
		ProcessorType string         `json:"processorType"`
		Available     bool           `json:"available"`
		InputFormats  []string       `json:"inputFormats"`
		OutputFormats []string       `json:"outputFormats"`
		Operations    []string       `json:"operations"`
		Params        []cliParamSpec `json:"params"`
	}
	cliCatalog struct {
		Processors []cliProcessor `json:"processors"`
	}
	cliEvents struct {
		JobID  string            `json:"jobId"`
		Events []json.RawMessage `json:"events"`
	}
)

func (p cliProcessor) hasParam(name string) bool {
	for _, s := range p.Params {
		if s.Name == name {
			return true
		}
	}
	return false
}

func (c *apiClient) processors(ctx context.Context) (cliCatalog, error) {
	var cat cliCatalog
	_, err := c.call(ctx, http.MethodGet, "/api/v1/processors", nil, &cat)
	return cat, err
}

func (c *apiClient) job(ctx context.Context, id string) (cliJob, []byte, error) {
	var j cliJob
	raw, err := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &j)
	return j, raw, err
}

// upload streams one file from disk as the multipart field "file". The body
// is built from the multipart header, the file and the closing boundary, so
// its length is known up front: the server can refuse a file over the plan
// limit (413) before any of its bytes are sent, and nothing is buffered.
func (c *apiClient) upload(ctx context.Context, path string, progress io.Writer) (cliFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return cliFile{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return cliFile{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.IsDir() {
		return cliFile{}, fmt.Errorf("upload %s: is a directory", path)
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	if _, err := mw.CreateFormFile("file", filepath.Base(path)); err != nil {
		return cliFile{}, fmt.Errorf("build upload of %s: %w", path, err)
	}
	headLen := head.Len()
	if err := mw.Close(); err != nil {
		return cliFile{}, fmt.Errorf("build upload of %s: %w", path, err)
	}
	trailer := append([]byte(nil), head.Bytes()[headLen:]...)
	head.Truncate(headLen)
	var src io.Reader = f
	if progress != nil {
		src = io.TeeReader(f, progress)
	}
	body := io.MultiReader(&head, src, bytes.NewReader(trailer))
	size := int64(headLen) + st.Size() + int64(len(trailer))
	res, err := c.do(ctx, http.MethodPost, "/api/v1/upload", body, mw.FormDataContentType(), size)
	if err != nil {
		return cliFile{}, failed(err, "upload %s", filepath.Base(path))
	}
	defer res.Body.Close()
	var out cliFile
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return cliFile{}, fmt.Errorf("decode upload of %s: %w", path, err)
	}
	return out, nil
}

// download writes the body of a GET (following a 302 to a presigned URL)
// to dest through a temporary file, so a failed download leaves nothing.
func (c *apiClient) download(ctx context.Context, method, path string, in any, dest string) (int64, error) {
	var body io.Reader
	var ct string
	size := int64(-1)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", path, err)
		}
		body, ct, size = bytes.NewReader(b), "application/json", int64(len(b))
	}
	res, err := c.do(ctx, method, path, body, ct, size)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".turbolane-*")
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dest, err)
	}
	n, err := io.Copy(tmp, res.Body)
	if err == nil {
		// CreateTemp makes 0600; a downloaded result is an ordinary file.
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("write %s: %w", dest, err)
	}
	return n, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// bar is a progress bar on stderr. On a terminal it redraws in place. On
// anything else (a pipe, a log file, a test buffer) redrawing would leave
// carriage returns and padding in the log, so the bar draws into nothing and
// prints plain lines instead: each new description, and the bar's final
// state once when it ends.
type bar struct {
	pb   *progressbar.ProgressBar
	w    io.Writer
	tty  bool
	desc string
	done bool
}

func newBar(w io.Writer, max int64, bytes bool, desc string) *bar {
	b := &bar{w: w, tty: isTerminal(w), desc: desc}
	out := io.Discard
	if b.tty {
		out = w
	}
	b.pb = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() {
			if b.tty {
				fmt.Fprintln(w)
			}
		}),
	)
	return b
}

// Write counts n bytes of an upload.
func (b *bar) Write(p []byte) (int, error) { return b.pb.Write(p) }

func (b *bar) describe(desc string) {
	if desc == b.desc || b.done {
		return
	}
	b.desc = desc
	b.pb.Describe(desc)
	if !b.tty {
		fmt.Fprintln(b.w, desc)
	}
}

func (b *bar) set(n int) { _ = b.pb.Set(n) }

// finish fills the bar and ends it.
func (b *bar) finish(desc string) {
	if b.done {
		return
	}
	b.pb.Describe(desc)
	_ = b.pb.Finish()
	b.end()
}

// exit ends the bar where it is.
func (b *bar) exit(desc string) {
	if b.done {
		return
	}
	b.pb.Describe(desc)
	_ = b.pb.RenderBlank()
	_ = b.pb.Exit()
	b.end()
}

func (b *bar) end() {
	b.done = true
	if !b.tty {
		fmt.Fprintln(b.w, strings.TrimSpace(strings.Trim(b.pb.String(), "\r")))
	}
}

// failed wraps err with what the command was doing, except when the server
// is unreachable: that line says it all.
func failed(err error, format string, args ...any) error {
	if errors.Is(err, ErrUnreachable) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// humanSize prints a byte count for people.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// parseInterspersed parses flags that may come after positional arguments
// ("convert a.jpg b.png --to webp") and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil // after "--" everything is positional
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
