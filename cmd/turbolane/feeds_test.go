package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convilyn/turbolane/workers/webhook"
)

// TestMetricsDashboardAndWebhook runs a few real jobs through `serve` with a
// webhook whose endpoint refuses the first deliveries, then checks the job
// metrics on GET /metrics, that every metric the Grafana dashboard queries
// exists there, and that the endpoint received every event exactly once per
// id, correctly signed.
func TestMetricsDashboardAndWebhook(t *testing.T) {
	const secret = "webhook-secret-for-tests"
	hook := newHookSink(t, secret, 3)
	m := startServe(t, func(c *Config) {
		c.WebhookURL = hook.srv.URL
		c.WebhookSecret = secret
		c.WebhookEvents = "created,started,completed,failed"
	})
	c := newClient(t, m.URL, "")

	ok := 0
	for i := range 2 {
		id := c.upload("m"+strconv.Itoa(i)+".jpg", testJPEG(t, 64, 48))
		j := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": id, "output_format": "png"}).JobID)
		if j.Status != "completed" {
			t.Fatalf("job %d: %+v", i, j)
		}
		ok++
	}
	full := testJPEG(t, 64, 48)
	bad := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": c.upload("cut.jpg", full[:len(full)/2]), "output_format": "png"}).JobID)
	if bad.Status != "failed" || bad.Error.Code != "corrupt_input" {
		t.Fatalf("truncated input: %+v", bad)
	}

	// The metrics follow the stream asynchronously: wait until they show
	// all three jobs.
	var text string
	waitFor(t, 30*time.Second, "job metrics", func() bool {
		text = scrape(t, m.URL)
		return metricValue(text, "turbolane_jobs_completed_total", `processor_type="image_conversion"`) == float64(ok) &&
			metricValue(text, "turbolane_jobs_failed_total", `processor_type="image_conversion"`, `code="corrupt_input"`) == 1
	})
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"turbolane_jobs_created_total", []string{`processor_type="image_conversion"`}, 3},
		{"turbolane_job_processing_seconds_count", []string{`processor_type="image_conversion"`, `outcome="completed"`}, 2},
		{"turbolane_job_processing_seconds_count", []string{`processor_type="image_conversion"`, `outcome="failed"`}, 1},
		{"turbolane_job_queue_seconds_count", []string{`processor_type="image_conversion"`}, 3},
		{"turbolane_queue_depth", []string{`pool="standard"`, `state="waiting"`}, 0},
		{"turbolane_queue_depth", []string{`pool="large"`, `state="running"`}, 0},
		{"turbolane_worker_busy_slots", []string{`pool="standard"`}, 0},
	} {
		if got := metricValue(text, want.name, want.labels...); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	if lag := metricValue(text, "turbolane_projection_lag_events"); lag < 0 {
		t.Errorf("turbolane_projection_lag_events missing")
	}

	// Every metric the dashboard plots exists in a real scrape.
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json is not JSON: %v", err)
	}
	if len(dash.Templating.List) == 0 || dash.Templating.List[0].Type != "datasource" {
		t.Errorf("dashboard has no datasource variable first")
	}
	names := regexp.MustCompile(`\bturbolane_[a-z_]+`)
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				queried[n] = true
			}
		}
	}
	for _, n := range []string{"turbolane_jobs_created_total", "turbolane_jobs_completed_total", "turbolane_jobs_failed_total",
		"turbolane_job_processing_seconds_bucket", "turbolane_job_queue_seconds_bucket", "turbolane_queue_depth",
		"turbolane_projection_lag_events", "turbolane_worker_busy_slots", "turbolane_webhook_attempts_total"} {
		if !queried[n] {
			t.Errorf("dashboard does not plot %s", n)
		}
	}
	for n := range queried {
		if !strings.Contains(text, "\n"+n+"{") && !strings.Contains(text, "\n"+n+" ") {
			t.Errorf("dashboard queries %s, which /metrics does not have", n)
		}
	}

	// The webhook saw each event once per id, after the refused attempts.
	waitFor(t, 60*time.Second, "webhook deliveries", func() bool { return hook.count("completed") == 2 && hook.count("failed") == 1 })
	if n := hook.count("created"); n != 3 {
		t.Errorf("webhook got %d created events, want 3", n)
	}
	if n := hook.count("progressed"); n != 0 {
		t.Errorf("webhook got %d progressed events, which were not asked for", n)
	}
	hook.check(t)
	text = scrape(t, m.URL)
	if got := metricValue(text, "turbolane_webhook_attempts_total", `result="failed"`); got != 3 {
		t.Errorf("webhook failed attempts = %v, want 3", got)
	}
	if got := metricValue(text, "turbolane_webhook_attempts_total", `result="delivered"`); got < 9 {
		t.Errorf("webhook delivered attempts = %v, want ≥ 9 (3 jobs × created, started, outcome)", got)
	}
}

// hookSink is a webhook endpoint that refuses the first `refuse` requests
// and records the accepted events by id.
type hookSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	refuse int
	seen   map[string]int    // event id → accepted deliveries
	types  map[string]string // event id → type
	errs   []string
}

func newHookSink(t *testing.T, secret string, refuse int) *hookSink {
	t.Helper()
	h := &hookSink{refuse: refuse, seen: map[string]int{}, types: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, 5*time.Minute, time.Now()); err != nil {
			h.errs = append(h.errs, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.refuse > 0 {
			h.refuse--
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		var ce struct{ ID, Type string }
		if err := json.Unmarshal(body, &ce); err != nil || ce.ID == "" || ce.ID != r.Header.Get(webhook.HeaderID) {
			h.errs = append(h.errs, "bad body or idempotency key: "+string(body))
		}
		if ct := r.Header.Get("Content-Type"); ct != webhook.ContentType {
			h.errs = append(h.errs, "content type "+ct)
		}
		h.seen[ce.ID]++
		h.types[ce.ID] = strings.TrimPrefix(ce.Type, "com.convilyn.turbolane.job.")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) count(typ string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for id, tp := range h.types {
		if tp == typ {
			n += h.seen[id]
		}
	}
	return n
}

func (h *hookSink) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		t.Errorf("webhook errors: %v", h.errs)
	}
	if h.refuse > 0 {
		t.Errorf("only %d requests reached the endpoint", 3-h.refuse)
	}
	var dup []string
	for id, n := range h.seen {
		if n != 1 {
			dup = append(dup, id+"×"+strconv.Itoa(n))
		}
	}
	sort.Strings(dup)
	if len(dup) > 0 {
		t.Errorf("events delivered more than once: %v", dup)
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %s", res.StatusCode, b)
	}
	return "\n" + string(b)
}

// metricValue returns the value of the first sample of name carrying all
// the given label pairs, or -1 when there is none.
func metricValue(text, name string, labels ...string) float64 {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		lbl, val := "", rest
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			lbl, val = rest[1:end], rest[end+1:]
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(","+lbl+",", ","+l+",") {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			return v
		}
	}
	return -1
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
