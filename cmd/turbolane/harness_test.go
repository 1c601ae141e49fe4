package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/convilyn/turbolane/api"
)

const (
	testAdminToken  = "admin-secret-for-tests"
	testWorkerToken = "worker-secret-for-tests"
)

// startServe runs the real `serve` wiring on a temp data dir and a random
// port, with short ack waits so that takeovers happen within a test.
func startServe(t *testing.T, mutate ...func(*Config)) *Main {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NATSListen = ""
	cfg.AdminToken = testAdminToken
	cfg.WorkerToken = testWorkerToken
	cfg.AckWait = 3 * time.Second
	cfg.RateLimit = 0
	cfg.LogLevel = "warn"
	for _, f := range mutate {
		f(&cfg)
	}
	return startMain(t, RoleServe, cfg)
}

func startMain(t *testing.T, role Role, cfg Config) *Main {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("TURBOLANE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	m := NewMain(role, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("start %s: %v", role, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close %s: %v", role, err)
		}
	})
	return m
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPI)
		if err != nil {
			specErr = err
			return
		}
		if err = doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = nil // match any host
		specRouter, specErr = legacy.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("load openapi spec: %v", specErr)
	}
	return specRouter
}

// client is an HTTP client for one user that validates every response it
// receives against api/openapi.yaml.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, base, token string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, token: token, http: &http.Client{
		Jar:           jar,
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) code(t *testing.T) string {
	t.Helper()
	var e struct{ Detail, Code string }
	r.json(t, &e)
	if e.Detail == "" {
		t.Fatalf("error without detail: %s", r.Body)
	}
	return e.Code
}

func (c *client) do(method, path string, body io.Reader, contentType string, hdr ...string) response {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read %s %s: %v", method, path, err)
	}
	c.validate(req, res, b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// validate checks a response against the OpenAPI document.
func (c *client) validate(req *http.Request, res *http.Response, body []byte) {
	c.t.Helper()
	if base, err := neturl.Parse(c.base); err == nil && base.Host != req.URL.Host {
		return // a presigned URL of MinIO, not our API
	}
	router := openAPIRouter(c.t)
	route, params, err := router.FindRoute(req)
	if err != nil {
		c.t.Errorf("%s %s is not in api/openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: true}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s → %d does not match api/openapi.yaml: %v\nbody: %.400s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
}

func (c *client) postJSON(path string, v any) response {
	c.t.Helper()
	b, _ := json.Marshal(v)
	return c.do(http.MethodPost, path, bytes.NewReader(b), "application/json")
}

func (c *client) get(path string) response {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, "")
}

// upload sends a file in one step (multipart) and returns its id.
func (c *client) upload(name string, data []byte) string {
	c.t.Helper()
	res := c.uploadRaw(name, data)
	if res.Status != http.StatusCreated {
		c.t.Fatalf("upload %s: %d %s", name, res.Status, res.Body)
	}
	var f struct{ FileID string }
	res.json(c.t, &f)
	return f.FileID
}

func (c *client) uploadRaw(name string, data []byte) response {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, _ := w.CreateFormFile("file", name)
	_, _ = part.Write(data)
	_ = w.Close()
	return c.do(http.MethodPost, "/api/v1/upload", &buf, w.FormDataContentType())
}

type jobJSON struct {
	JobID           string         `json:"jobId"`
	UserID          string         `json:"userId"`
	Status          string         `json:"status"`
	ProcessorType   string         `json:"processorType"`
	Progress        int            `json:"progress"`
	ProgressMessage string         `json:"progressMessage"`
	Params          map[string]any `json:"params"`
	ResultFiles     []struct {
		FileID      string `json:"fileId"`
		FileName    string `json:"fileName"`
		MimeType    string `json:"mimeType"`
		SizeBytes   int64  `json:"sizeBytes"`
		DownloadURL string `json:"downloadUrl"`
	} `json:"resultFiles"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RetryCount int `json:"retryCount"`
}

func (c *client) createJob(typ string, params map[string]any) jobJSON {
	c.t.Helper()
	res := c.postJSON("/api/v1/jobs", map[string]any{"processor_type": typ, "params": params})
	if res.Status != http.StatusAccepted {
		c.t.Fatalf("create %s job: %d %s", typ, res.Status, res.Body)
	}
	var j jobJSON
	res.json(c.t, &j)
	return j
}

// waitJob polls like the spec recommends until the job is terminal.
func (c *client) waitJob(id string) jobJSON {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res := c.get("/api/v1/jobs/" + id)
		if res.Status != http.StatusOK {
			c.t.Fatalf("poll %s: %d %s", id, res.Status, res.Body)
		}
		var j jobJSON
		res.json(c.t, &j)
		if j.Status == "completed" || j.Status == "failed" {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s still %s after 90 s", id, j.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testJPEG encodes a w×h gradient JPEG.
func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustStatus(t *testing.T, res response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("want %d %s, got %d %s", status, code, res.Status, res.Body)
	}
	if code != "" {
		if got := res.code(t); got != code {
			t.Fatalf("want code %s, got %s (%s)", code, got, res.Body)
		}
	}
}

func fmtJSON(v any) string { b, _ := json.Marshal(v); return fmt.Sprintf("%s", b) }

func mustURL(t *testing.T, s string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// download fetches a file, following the one redirect to a presigned URL
// that the contract allows.
func (c *client) download(url string) response {
	c.t.Helper()
	res := c.get(url)
	if res.Status == http.StatusFound {
		loc := res.Header.Get("Location")
		if loc == "" {
			c.t.Fatalf("302 without Location from %s", url)
		}
		return c.get(loc)
	}
	return res
}
