package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	a, b := c.upload("a.png", []byte("a")), c.upload("b.png", []byte("b"))
	res := c.do("POST", "/api/v1/jobs/batch", map[string]any{
		"processorType": "image_conversion", "outputFormat": "webp",
		"items": []any{
			map[string]any{"fileId": a},
			map[string]any{"fileId": b, "params": map[string]any{"quality": 60, "output_format": "png"}},
		},
	}).status(http.StatusAccepted)
	conform(t, "BatchResponse", res.Body.Bytes())
	var out struct{ Jobs []map[string]any }
	res.decode(&out)
	require.Len(t, out.Jobs, 2)
	require.Equal(t, a, out.Jobs[0]["params"].(map[string]any)["file_id"])
	require.Equal(t, "webp", out.Jobs[0]["params"].(map[string]any)["output_format"])
	require.Equal(t, "png", out.Jobs[1]["params"].(map[string]any)["output_format"], "an item's own params win")
	require.EqualValues(t, 60, out.Jobs[1]["params"].(map[string]any)["quality"])
	for _, j := range out.Jobs {
		require.Equal(t, "queued", j["status"])
		c.do("GET", "/api/v1/jobs/"+j["jobId"].(string), nil).status(http.StatusOK)
	}
}

func TestBatchRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	fid := c.upload("a.png", []byte("a"))
	items := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"fileId": fid}
		}
		return out
	}
	ok := map[string]any{"fileId": fid}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"zero items", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": items(0)}, 422, "validation_error"},
		{"no items", map[string]any{"processorType": "image_conversion", "outputFormat": "png"}, 422, "validation_error"},
		{"21 items", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": items(21)}, 422, "validation_error"},
		{"not json", `{"items": [`, 400, "invalid_json"},
		{"items an object", `{"processorType": "image_conversion", "items": {}}`, 400, "invalid_json"},
		{"fileId a number", `{"processorType": "image_conversion", "items": [{"fileId": 1}]}`, 400, "invalid_json"},
		{"missing processorType", map[string]any{"outputFormat": "png", "items": items(1)}, 422, "validation_error"},
		{"unknown processorType", map[string]any{"processorType": "x", "outputFormat": "png", "items": items(1)}, 422, "validation_error"},
		{"unknown outputFormat", map[string]any{"processorType": "image_conversion", "outputFormat": "xyz", "items": items(1)}, 422, "unsupported_format"},
		{"missing fileId", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": []any{ok, map[string]any{}}}, 422, "validation_error"},
		{"bad item quality", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": []any{ok, map[string]any{"fileId": fid, "params": map[string]any{"quality": 0}}}}, 422, "validation_error"},
		{"one unknown file", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": []any{ok, map[string]any{"fileId": domain.NewFileID()}}}, 404, "file_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.do("POST", "/api/v1/jobs/batch", tt.body).fail(tt.status, tt.code)
		})
	}
	require.Empty(t, e.store.jobIDs(), "a bad item creates nothing")

	res := c.do("POST", "/api/v1/jobs/batch", map[string]any{"processorType": "image_conversion", "outputFormat": "png", "items": items(20)}).status(http.StatusAccepted)
	var out struct{ Jobs []any }
	res.decode(&out)
	require.Len(t, out.Jobs, 20)
}
