package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convilyn/turbolane/api"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	adminToken  = "admin-token-for-tests"
	workerToken = "worker-token-for-tests"
)

// env is one API instance over fresh fakes.
type env struct {
	t     testing.TB
	h     http.Handler
	store *fakeStore
	view  *fakeView
	files *fakeFiles
	keys  *fakeKeys
	blobs *fakeBlobs
	reg   *prometheus.Registry
	ready map[string]error
	mu    sync.Mutex
	ips   int
}

// testLimits keeps plan limits small so that over-limit uploads are cheap.
func testLimits() domain.PlanLimits {
	return domain.PlanLimits{domain.PlanAnonymous: 1000, domain.PlanFree: 5000, domain.PlanPro: 50_000, domain.PlanBusiness: 500_000}
}

func newEnv(t testing.TB, mods ...func(*handlers.Config, *handlers.Deps)) *env {
	t.Helper()
	store := newFakeStore()
	e := &env{
		t: t, store: store,
		view:  &fakeView{store: store, hidden: map[string]bool{}, estimates: map[domain.ProcessorType]float64{}},
		files: &fakeFiles{files: map[string]domain.File{}},
		keys:  &fakeKeys{keys: map[string]handlers.APIKey{}},
		blobs: &fakeBlobs{objects: map[string]fakeObject{}},
		reg:   prometheus.NewRegistry(),
		ready: map[string]error{},
	}
	cfg := handlers.Config{
		PublicURL: "https://tl.example", AdminToken: adminToken, WorkerToken: workerToken,
		SessionSecret: []byte("0123456789abcdef0123456789abcdef"), PlanLimits: testLimits(),
		LargeFileBytes: 2000, OpenAPI: api.OpenAPI, Metrics: e.reg,
	}
	deps := handlers.Deps{
		Commands: e.store, History: e.store, Jobs: e.view, Files: e.files, Keys: e.keys, Blobs: e.blobs,
		EncodeEvent: func(ev domain.Event) any {
			return map[string]any{"id": ev.ID, "subject": ev.JobID, "type": "com.convilyn.turbolane.job." + string(ev.Type), "data": ev.Data}
		},
		Checks: map[string]func(context.Context) error{
			"nats":    func(context.Context) error { return e.readyErr("nats") },
			"storage": func(context.Context) error { return e.readyErr("storage") },
		},
	}
	for _, m := range mods {
		m(&cfg, &deps)
	}
	h, err := handlers.New(cfg, deps)
	require.NoError(t, err)
	e.h = h
	return e
}

func (e *env) readyErr(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready[name]
}

// client is one HTTP client: its own remote address, cookies and token.
type client struct {
	e       *env
	t       testing.TB
	remote  string
	token   string
	cookies map[string]*http.Cookie
}

// anon returns a client without credentials, from its own address so that
// rate limits do not couple tests.
func (e *env) anon() *client {
	e.mu.Lock()
	e.ips++
	n := e.ips
	e.mu.Unlock()
	return &client{e: e, t: e.t, remote: fmt.Sprintf("192.0.2.%d:%d", n%250+1, 40000+n), cookies: map[string]*http.Cookie{}}
}

func (e *env) bearer(tok string) *client {
	c := e.anon()
	c.token = tok
	return c
}

// user creates an API key through the admin endpoint and returns its client.
func (e *env) user(userID string, plan domain.Plan) *client {
	e.t.Helper()
	res := e.bearer(adminToken).do("POST", "/api/v1/admin/api-keys", map[string]any{"userId": userID, "plan": string(plan)})
	res.status(http.StatusCreated)
	var out struct{ APIKey, UserID, Plan string }
	res.decode(&out)
	return e.bearer(out.APIKey)
}

// on returns the client reporting to t (a fuzz target's own T).
func (c *client) on(t testing.TB) *client {
	cp := *c
	cp.t = t
	return &cp
}

type response struct {
	t testing.TB
	*httptest.ResponseRecorder
}

// do sends a request. body is sent raw when it is a string or []byte and as
// JSON otherwise; hdr is name, value pairs.
func (c *client) do(method, path string, body any, hdr ...string) *response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = c.remote
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	c.e.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		c.cookies[ck.Name] = ck
	}
	return &response{t: c.t, ResponseRecorder: rec}
}

func (r *response) status(want int) *response {
	r.t.Helper()
	require.Equal(r.t, want, r.Code, "body: %s", r.Body.String())
	return r
}

func (r *response) decode(v any) {
	r.t.Helper()
	require.NoError(r.t, json.Unmarshal(r.Body.Bytes(), v), "body: %s", r.Body.String())
}

// fail asserts an error response: status, code and the exact error shape.
func (r *response) fail(status int, code string) {
	r.t.Helper()
	r.status(status)
	require.Equal(r.t, "application/json", r.Header().Get("Content-Type"))
	var body map[string]any
	r.decode(&body)
	require.Len(r.t, body, 2, "error body: %s", r.Body.String())
	require.Equal(r.t, code, body["code"], "body: %s", r.Body.String())
	require.NotEmpty(r.t, body["detail"])
	conform(r.t, "Error", r.Body.Bytes())
}

func (r *response) job() map[string]any {
	r.t.Helper()
	conform(r.t, "Job", r.Body.Bytes())
	var j map[string]any
	r.decode(&j)
	return j
}

// upload stores a confirmed file through the one-step multipart upload.
func (c *client) upload(name string, data []byte) string {
	c.t.Helper()
	res := c.multipart("file", name, "", data)
	res.status(http.StatusCreated)
	var f struct{ FileID string }
	res.decode(&f)
	return f.FileID
}

func (c *client) multipart(field, name, contentType string, data []byte) *response {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(c.t, mw.WriteField("note", "ignored"))
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, field, name)}
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	pw, err := mw.CreatePart(h)
	require.NoError(c.t, err)
	_, err = pw.Write(data)
	require.NoError(c.t, err)
	require.NoError(c.t, mw.Close())
	return c.do("POST", "/api/v1/upload", buf.Bytes(), "Content-Type", mw.FormDataContentType())
}

// createJob creates an image conversion of a fresh upload and returns its id.
func (c *client) createJob() string {
	c.t.Helper()
	fid := c.upload("in.png", []byte("png bytes"))
	res := c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_conversion", "params": map[string]any{"file_id": fid, "output_format": "webp"}})
	res.status(http.StatusAccepted)
	return res.job()["jobId"].(string)
}

// The worker side, straight on the store.

func (e *env) start(jobID string) string {
	e.t.Helper()
	lease := domain.NewID("lease")
	j := e.store.job(jobID)
	_, err := e.store.Execute(context.Background(), jobID, domain.Start{ID: domain.NewID("cmd"), Attempt: j.RetryCount, WorkerID: "w1", Lease: lease})
	require.NoError(e.t, err)
	return lease
}

func (e *env) complete(jobID string, results ...domain.ResultFile) {
	e.t.Helper()
	lease := e.start(jobID)
	for _, rf := range results {
		e.blobs.put(rf.FileID, []byte("result of "+rf.FileName), rf.MimeType)
	}
	_, err := e.store.Execute(context.Background(), jobID, domain.Complete{ID: domain.NewID("cmd"), Lease: lease, ResultFiles: results})
	require.NoError(e.t, err)
}

func (e *env) fail(jobID string) {
	e.t.Helper()
	lease := e.start(jobID)
	_, err := e.store.Execute(context.Background(), jobID, domain.Fail{ID: domain.NewID("cmd"), Lease: lease, Error: domain.JobError{Code: domain.CodeCorruptInput, Message: "not a PNG"}})
	require.NoError(e.t, err)
}

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

// conform validates a response body against a schema of the contract's
// OpenAPI document.
func conform(t testing.TB, schema string, body []byte) {
	t.Helper()
	specOnce.Do(func() { spec, specErr = openapi3.NewLoader().LoadFromData(api.OpenAPI) })
	require.NoError(t, specErr)
	ref := spec.Components.Schemas[schema]
	require.NotNil(t, ref, "schema %s", schema)
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	require.NoError(t, ref.Value.VisitJSON(v), "%s: %s", schema, body)
}

type (
	handlersConfig = handlers.Config
	handlersDeps   = handlers.Deps
)
