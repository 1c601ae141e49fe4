package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

// checkAnswer asserts what every answer to a hostile body must satisfy: an
// expected status, never a 500, and the exact error shape for errors.
func checkAnswer(t *testing.T, res *response, allowed ...int) {
	t.Helper()
	require.True(t, slices.Contains(allowed, res.Code), "status %d: %s", res.Code, res.Body.String())
	if res.Code >= 400 {
		var body map[string]any
		require.NoError(t, json.Unmarshal(res.Body.Bytes(), &body), res.Body.String())
		require.Len(t, body, 2)
		require.NotEmpty(t, body["code"])
		require.NotEmpty(t, body["detail"])
	}
}

func FuzzCreateJob(f *testing.F) {
	e := newEnv(f)
	c := e.anon()
	fid := c.upload("in.png", []byte("png"))
	for _, seed := range []string{
		`{"processor_type": "image_conversion", "params": {"file_id": "` + fid + `", "output_format": "webp"}}`,
		`{"processor_type": "image_conversion", "params": {"file_id": "` + fid + `", "output_format": "webp", "quality": 1e400}}`,
		`{"processor_type": "pdf_operations", "params": {"operation": "merge", "file_ids": ["` + fid + `", 3]}}`,
		`{"processor_type": "media_processing", "params": {"file_id": "` + fid + `", "operation": "trim", "width": -1}}`,
		`{"processor_type": "image_compression", "params": {"file_id": null, "quality": 50.5}}`,
		`{"processor_type": "", "params": null}`,
		`{"processor_type": ["x"]}`,
		`[]`, `null`, `"x"`, `{`, ``, `{"params": {"file_id": {"$ne": 1}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		res := c.on(t).do("POST", "/api/v1/jobs", body)
		checkAnswer(t, res, 202, 400, 404, 413, 422)
		if res.Code == 202 {
			conform(t, "Job", res.Body.Bytes())
		}
	})
}

func FuzzBatch(f *testing.F) {
	e := newEnv(f)
	c := e.anon()
	fid := c.upload("in.png", []byte("png"))
	for _, seed := range []string{
		`{"processorType": "image_conversion", "outputFormat": "png", "items": [{"fileId": "` + fid + `"}]}`,
		`{"processorType": "image_conversion", "outputFormat": "png", "items": [{"fileId": "` + fid + `", "params": {"file_id": 7}}]}`,
		`{"processorType": "image_conversion", "items": [{"fileId": "` + fid + `", "params": {"output_format": "tiff", "width": 0}}]}`,
		`{"processorType": "image_conversion", "items": [null]}`,
		`{"items": []}`, `{"items": {}}`, `{}`, `0`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		res := c.on(t).do("POST", "/api/v1/jobs/batch", body)
		checkAnswer(t, res, 202, 400, 404, 413, 422)
	})
}

func FuzzPresign(f *testing.F) {
	e := newEnv(f)
	c := e.anon()
	for _, seed := range []string{
		`{"fileName": "a.png", "fileSize": 10}`,
		`{"fileName": "../../a", "fileSize": 0, "contentType": "image/png; q=1"}`,
		`{"fileName": "\u0000", "fileSize": 1}`,
		`{"fileName": "a", "fileSize": 9223372036854775807}`,
		`{"fileName": "a", "fileSize": 99999999999999999999}`,
		`{"fileName": "a", "fileSize": 1, "contentType": ";;;"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		res := c.on(t).do("POST", "/api/v1/upload/presign", body)
		checkAnswer(t, res, 200, 400, 413, 422)
		if res.Code == 200 {
			conform(t, "PresignResponse", res.Body.Bytes())
		}
	})
}

func FuzzListQuery(f *testing.F) {
	e := newEnv(f)
	c := e.anon()
	c.createJob()
	for _, seed := range []string{"limit=1&page=1", "limit=100&page=2147483647", "page=99999999999999999999", "sort_by=status&sort_order=ASC", "status=queued&status=failed", "limit=%00", "processor_type=image_conversion"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Skip()
		}
		res := c.on(t).do("GET", "/api/v1/jobs?"+q.Encode(), nil)
		checkAnswer(t, res, 200, 422)
		if res.Code == 200 {
			conform(t, "JobList", res.Body.Bytes())
		}
	})
}

func FuzzSessionCookie(f *testing.F) {
	e := newEnv(f)
	good := e.anon()
	good.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	f.Add(good.cookies["tl_session"].Value)
	f.Add("anon_.")
	f.Add("anon_00000000000000000000000000.AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		c := e.anon().on(t)
		c.cookies["tl_session"] = &http.Cookie{Name: "tl_session", Value: value}
		res := c.on(t).do("GET", "/api/v1/jobs", nil)
		checkAnswer(t, res, 200)
	})
}

// FuzzJobParams drives the param checks of every processor type, available
// or not, with arbitrary params objects.
func FuzzJobParams(f *testing.F) {
	e := newEnv(f)
	c := e.anon()
	fid := c.upload("in.pdf", []byte("%PDF"))
	types := domain.ProcessorTypes()
	for i, seed := range []string{
		`{"file_id": "` + fid + `", "output_format": "png", "quality": 100, "width": 65535}`,
		`{"file_id": "` + fid + `", "quality": 0, "lossless": "yes"}`,
		`{"file_id": "` + fid + `", "output_format": "docx"}`,
		`{"file_id": "` + fid + `", "language": "eng+deu", "output_format": "hocr"}`,
		`{"operation": "rotate", "file_id": "` + fid + `", "angle": 45}`,
		`{"operation": "merge", "file_ids": ["` + fid + `", "` + fid + `"]}`,
		`{"file_id": "` + fid + `", "output_format": "srt"}`,
		`{"file_id": "` + fid + `", "operation": "trim", "start": -1, "duration": 1e308}`,
	} {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, which uint8, params string) {
		var p any
		if json.Unmarshal([]byte(params), &p) != nil {
			t.Skip()
		}
		body := map[string]any{"processor_type": types[int(which)%len(types)], "params": p}
		res := c.on(t).do("POST", "/api/v1/jobs", body)
		checkAnswer(t, res, 202, 400, 404, 422)
	})
}
