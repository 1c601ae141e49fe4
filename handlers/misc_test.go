package handlers_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/api"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

func TestProcessors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.anon().do("GET", "/api/v1/processors", nil).status(http.StatusOK)
	conform(t, "ProcessorCatalog", res.Body.Bytes())
	var out struct {
		Processors []struct {
			ProcessorType string
			Available     bool
		}
		Limits struct {
			Plans          map[string]int64
			LargeFileBytes int64
			MaxBatchItems  int
		}
	}
	res.decode(&out)
	require.Len(t, out.Processors, len(domain.Specs()))
	require.Equal(t, "image_conversion", out.Processors[0].ProcessorType)
	require.True(t, out.Processors[0].Available)
	require.Equal(t, map[string]int64{"anonymous": 1000, "free": 5000, "pro": 50_000, "business": 500_000}, out.Limits.Plans)
	require.EqualValues(t, 2000, out.Limits.LargeFileBytes)
	require.Equal(t, 20, out.Limits.MaxBatchItems)
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	require.JSONEq(t, `{"status":"ok"}`, c.do("GET", "/healthz", nil).status(http.StatusOK).Body.String())
	require.JSONEq(t, `{"status":"ready","checks":{"nats":"ok","storage":"ok"}}`, c.do("GET", "/readyz", nil).status(http.StatusOK).Body.String())

	e.mu.Lock()
	e.ready["storage"] = errors.New("dial tcp 10.0.0.7:9000: connection refused")
	e.mu.Unlock()
	res := c.do("GET", "/readyz", nil).status(http.StatusServiceUnavailable)
	conform(t, "NotReady", res.Body.Bytes())
	require.JSONEq(t, `{
		"detail": "storage: dial tcp 10.0.0.7:9000: connection refused", "code": "not_ready",
		"checks": {"nats": "ok", "storage": "dial tcp 10.0.0.7:9000: connection refused"}
	}`, res.Body.String())
}

func TestOpenAPIAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	res := c.do("GET", "/api/v1/openapi.yaml", nil).status(http.StatusOK)
	require.Equal(t, "application/yaml", res.Header().Get("Content-Type"))
	require.Equal(t, string(api.OpenAPI), res.Body.String())

	id := c.createJob()
	c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK)
	m := c.do("GET", "/metrics", nil).status(http.StatusOK).Body.String()
	require.Contains(t, m, `turbolane_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="200"} 1`)
	require.Contains(t, m, `turbolane_http_request_duration_seconds_count{method="POST",route="/api/v1/jobs"} 1`)
	require.NotContains(t, m, id, "ids never become labels")

	// Two handlers on one registry share the collectors.
	_ = newEnv(t, func(cfg *handlers.Config, _ *handlers.Deps) { cfg.Metrics = e.reg })

	noSpec := newEnv(t, func(cfg *handlers.Config, _ *handlers.Deps) { cfg.OpenAPI = nil })
	noSpec.anon().do("GET", "/api/v1/openapi.yaml", nil).fail(404, "not_found")
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	c.do("GET", "/nope", nil).fail(404, "not_found")
	c.do("GET", "/api/v1/nope", nil).fail(404, "not_found")
	c.do("PUT", "/api/v1/jobs", nil).fail(405, "method_not_allowed")
	c.do("DELETE", "/healthz", nil).fail(405, "method_not_allowed")
}

// panicky is a job view that panics, to exercise the recoverer.
type panicky struct{ *fakeView }

func (panicky) Get(context.Context, string) (domain.Job, error) { panic("view exploded") }

func TestInternalErrorsHideDetails(t *testing.T) {
	t.Parallel()
	var p *panicky
	e := newEnv(t, func(_ *handlers.Config, d *handlers.Deps) {
		p = &panicky{d.Jobs.(*fakeView)}
		d.Jobs = p
	})
	c := e.anon()
	res := c.do("GET", "/api/v1/jobs/"+domain.NewJobID(), nil)
	res.fail(500, "internal_error")
	require.NotContains(t, res.Body.String(), "exploded")
	require.NotContains(t, res.Body.String(), "goroutine")

	fid := c.upload("a.png", []byte("a"))
	e.store.mu.Lock()
	e.store.fail = errors.New("nats: connection to 10.1.2.3 closed")
	e.store.mu.Unlock()
	res = c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_conversion", "params": map[string]any{"file_id": fid, "output_format": "png"}})
	res.fail(500, "internal_error")
	require.NotContains(t, res.Body.String(), "10.1.2.3")
	f, _ := e.files.Get(t.Context(), fid)
	require.False(t, f.ExpiresAt.IsZero(), "a failed create gives the upload its expiry back")

	e.store.mu.Lock()
	e.store.fail = domain.ErrUnavailable.WithMessage("the event store is not reachable")
	e.store.mu.Unlock()
	c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_conversion", "params": map[string]any{"file_id": fid, "output_format": "png"}}).fail(503, "unavailable")
}

// laggingView never catches up.
type laggingView struct{ *fakeView }

func (laggingView) WaitFor(ctx context.Context, seq uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestReadYourWritesTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(cfg *handlers.Config, d *handlers.Deps) {
		cfg.ReadYourWritesTimeout = time.Millisecond
		d.Jobs = laggingView{d.Jobs.(*fakeView)}
	})
	// A view that never catches up delays the answer, never fails it.
	e.anon().createJob()
}

func TestJSONResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.anon().do("GET", "/api/v1/jobs", nil)
	require.Equal(t, "application/json", res.Header().Get("Content-Type"))
	body, _ := io.ReadAll(res.Result().Body)
	require.True(t, strings.HasSuffix(string(body), "\n"))
}

func TestProcessorsShowParamChoices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *handlers.Config, _ *handlers.Deps) {
		c.ParamChoices = map[domain.ProcessorType]map[string][]string{domain.OCRProcessing: {"language": {"deu", "eng"}}}
	})
	res := e.anon().do("GET", "/api/v1/processors", nil).status(http.StatusOK)
	conform(t, "ProcessorCatalog", res.Body.Bytes())
	var out struct {
		Processors []domain.Spec
	}
	res.decode(&out)
	for _, s := range out.Processors {
		for _, p := range s.Params {
			if s.Type == domain.OCRProcessing && p.Name == "language" {
				require.Equal(t, []string{"deu", "eng"}, p.Enum)
				return
			}
		}
	}
	t.Fatal("ocr_processing has no language param in the catalog")
}
