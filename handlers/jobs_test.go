package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestCreateJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.view.estimates[domain.ImageConversion] = 1.5
	c := e.anon()
	fid := c.upload("holiday.png", []byte("png bytes"))

	res := c.do("POST", "/api/v1/jobs", map[string]any{
		"processor_type": "image_conversion",
		"params":         map[string]any{"file_id": fid, "output_format": "WEBP", "quality": 80},
	}).status(http.StatusAccepted)
	j := res.job()
	require.True(t, domain.ValidID("job", j["jobId"].(string)))
	require.Equal(t, "queued", j["status"])
	require.Equal(t, "image_conversion", j["processorType"])
	require.Equal(t, map[string]any{"file_id": fid, "output_format": "webp", "quality": 80.0, "maintain_aspect": true, "optimize": false}, j["params"])
	require.Equal(t, []any{}, j["resultFiles"])
	require.Nil(t, j["error"])
	require.Nil(t, j["startedAt"])
	require.Equal(t, 1.5, j["estimatedDuration"])
	require.Equal(t, c.cookies["tl_session"].Value[:len(j["userId"].(string))], j["userId"])

	// The upload is now kept while the job uses it, and the job is in the
	// standard pool with its input captured.
	f, err := e.files.Get(t.Context(), fid)
	require.NoError(t, err)
	require.True(t, f.ExpiresAt.IsZero())
	stored := e.store.job(j["jobId"].(string))
	require.Equal(t, domain.PoolStandard, stored.Pool)
	require.Equal(t, []domain.InputFile{{FileID: fid, FileName: "holiday.png", MimeType: "image/png", SizeBytes: 9}}, stored.InputFiles)
	// Read-your-writes: the handler waited for the view to reach the append.
	require.Contains(t, e.view.waited, stored.Version)

	// The creator sees it right away.
	c.do("GET", "/api/v1/jobs/"+stored.ID, nil).status(http.StatusOK)
}

func TestCreateJobLargePool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.user("big", domain.PlanFree)
	// LargeFileBytes is 2000 in tests: exactly at the threshold is large.
	img := c.upload("big.png", make([]byte, 2000))
	res := c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_compression", "params": map[string]any{"file_id": img}})
	res.status(http.StatusAccepted)
	require.Equal(t, domain.PoolLarge, e.store.job(res.job()["jobId"].(string)).Pool)
}

func TestCreateJobRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	fid := c.upload("in.png", []byte("png"))
	other := e.anon().upload("theirs.png", []byte("png"))
	unconfirmed := func() string {
		var p struct{ FileID string }
		c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "x.png", "fileSize": 3}).status(http.StatusOK).decode(&p)
		return p.FileID
	}()
	params := func(kv ...any) map[string]any {
		p := map[string]any{"file_id": fid, "output_format": "png"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(p, kv[i].(string))
				continue
			}
			p[kv[i].(string)] = kv[i+1]
		}
		return p
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not json", `{"processor_type": `, 400, "invalid_json"},
		{"not an object", `[1,2]`, 400, "invalid_json"},
		{"empty body", ``, 400, "invalid_json"},
		{"two values", `{} {}`, 400, "invalid_json"},
		{"processor_type a number", `{"processor_type": 5, "params": {}}`, 400, "invalid_json"},
		{"params a string", `{"processor_type": "image_conversion", "params": "x"}`, 400, "invalid_json"},
		{"quality a string", map[string]any{"processor_type": "image_conversion", "params": params("quality", "high")}, 400, "invalid_json"},
		{"missing processor_type", map[string]any{"params": params()}, 422, "validation_error"},
		{"unknown processor_type", map[string]any{"processor_type": "teleport", "params": params()}, 422, "validation_error"},
		{"missing params", map[string]any{"processor_type": "image_conversion"}, 422, "validation_error"},
		{"missing file_id", map[string]any{"processor_type": "image_conversion", "params": params("file_id", nil)}, 422, "validation_error"},
		{"unknown output_format", map[string]any{"processor_type": "image_conversion", "params": params("output_format", "xyz")}, 422, "unsupported_format"},
		{"quality 0", map[string]any{"processor_type": "image_conversion", "params": params("quality", 0)}, 422, "validation_error"},
		{"quality 101", map[string]any{"processor_type": "image_conversion", "params": params("quality", 101)}, 422, "validation_error"},
		{"unknown param", map[string]any{"processor_type": "image_conversion", "params": params("colour", "red")}, 422, "validation_error"},
		{"unknown file", map[string]any{"processor_type": "image_conversion", "params": params("file_id", domain.NewFileID())}, 404, "file_not_found"},
		{"malformed file id", map[string]any{"processor_type": "image_conversion", "params": params("file_id", "../../etc/passwd")}, 404, "file_not_found"},
		{"someone else's file", map[string]any{"processor_type": "image_conversion", "params": params("file_id", other)}, 404, "file_not_found"},
		{"unconfirmed upload", map[string]any{"processor_type": "image_conversion", "params": params("file_id", unconfirmed)}, 404, "file_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.do("POST", "/api/v1/jobs", tt.body).fail(tt.status, tt.code)
		})
	}
	require.Empty(t, e.store.jobIDs(), "no rejected request may create a job")
	f, _ := e.files.Get(t.Context(), fid)
	require.False(t, f.ExpiresAt.IsZero(), "a rejected request must not keep the upload")
}

func TestCreateJobBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := `{"processor_type": "image_conversion", "params": {"text": "` + stringOf('a', 1<<20) + `"}}`
	e.anon().do("POST", "/api/v1/jobs", big).fail(http.StatusRequestEntityTooLarge, "request_too_large")
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestGetJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	rf := domain.ResultFile{FileID: domain.NewFileID(), FileName: "in.webp", MimeType: "image/webp", SizeBytes: 12}
	e.complete(id, rf)

	j := c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK).job()
	require.Equal(t, "completed", j["status"])
	require.EqualValues(t, 100, j["progress"])
	require.NotNil(t, j["startedAt"])
	require.NotNil(t, j["completedAt"])
	require.Nil(t, j["estimatedDuration"])
	require.Equal(t, []any{map[string]any{
		"fileId": rf.FileID, "fileName": "in.webp", "mimeType": "image/webp", "sizeBytes": 12.0,
		"downloadUrl": "https://tl.example/api/v1/files/" + rf.FileID + "/download",
	}}, j["resultFiles"])

	t.Run("view lags: folds the history", func(t *testing.T) {
		e.view.hide(id)
		j := c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK).job()
		require.Equal(t, "completed", j["status"])
		// A stranger still gets nothing through the fallback.
		e.anon().do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")
	})
	t.Run("unknown, malformed and foreign ids", func(t *testing.T) {
		c.do("GET", "/api/v1/jobs/"+domain.NewJobID(), nil).fail(404, "job_not_found")
		c.do("GET", "/api/v1/jobs/job_nope", nil).fail(404, "job_not_found")
		other := e.anon()
		r1 := other.do("GET", "/api/v1/jobs/"+id, nil)
		r1.fail(404, "job_not_found")
		r2 := other.do("GET", "/api/v1/jobs/"+domain.NewJobID(), nil)
		r2.fail(404, "job_not_found")
		require.Equal(t, r2.Body.String(), r1.Body.String(), "a foreign job must look exactly like a missing one")
	})
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	var ids []string
	for range 5 {
		ids = append(ids, c.createJob())
	}
	e.fail(ids[1])
	e.anon().createJob() // someone else's

	var page struct {
		Jobs       []map[string]any
		Pagination struct{ Page, Limit, Total, TotalPages int }
	}
	res := c.do("GET", "/api/v1/jobs?limit=2&page=2&sort_order=asc", nil).status(http.StatusOK)
	conform(t, "JobList", res.Body.Bytes())
	res.decode(&page)
	require.Equal(t, 5, page.Pagination.Total)
	require.Equal(t, 3, page.Pagination.TotalPages)
	require.Equal(t, 2, page.Pagination.Page)
	require.Equal(t, 2, page.Pagination.Limit)
	require.Len(t, page.Jobs, 2)

	c.do("GET", "/api/v1/jobs?status=failed&processor_type=image_conversion&sort_by=updated_at", nil).status(http.StatusOK).decode(&page)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, ids[1], page.Jobs[0]["jobId"])

	c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK).decode(&page)
	require.Equal(t, 20, page.Pagination.Limit)
	require.Len(t, page.Jobs, 5)

	empty := e.anon().do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	require.JSONEq(t, `{"jobs": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}`, empty.Body.String())

	for _, q := range []string{"limit=0", "limit=101", "limit=ten", "page=0", "page=-1", "page=1.5", "status=done", "processor_type=teleport", "sort_by=size", "sort_order=up"} {
		t.Run(q, func(t *testing.T) {
			c.do("GET", "/api/v1/jobs?"+q, nil).fail(422, "validation_error")
		})
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	input := e.store.job(id).InputFiles[0].FileID
	rf := domain.ResultFile{FileID: domain.NewFileID(), FileName: "out.webp", MimeType: "image/webp", SizeBytes: 3}
	e.complete(id, rf)
	require.True(t, e.blobs.has(rf.FileID))

	e.anon().do("DELETE", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")
	c.do("DELETE", "/api/v1/jobs/"+id+"?cleanup_files=maybe", nil).fail(422, "validation_error")
	res := c.do("DELETE", "/api/v1/jobs/"+id, nil).status(http.StatusNoContent)
	require.Empty(t, res.Body.String())
	require.False(t, e.blobs.has(input))
	require.False(t, e.files.has(input))
	require.False(t, e.blobs.has(rf.FileID))
	require.True(t, e.store.job(id).Deleted)

	c.do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")
	c.do("DELETE", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")

	t.Run("cleanup_files=false keeps the files", func(t *testing.T) {
		id := c.createJob()
		input := e.store.job(id).InputFiles[0].FileID
		c.do("DELETE", "/api/v1/jobs/"+id+"?cleanup_files=false", nil).status(http.StatusNoContent)
		require.True(t, e.blobs.has(input))
		require.True(t, e.files.has(input))
	})
}

// TestDeleteKeepsInputsOfOtherJobs deletes one of two jobs on the same
// upload: the other job's input must survive until it too is deleted.
func TestDeleteKeepsInputsOfOtherJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	fid := c.upload("in.png", []byte("png bytes"))
	create := func() string {
		res := c.do("POST", "/api/v1/jobs", map[string]any{"processor_type": "image_conversion", "params": map[string]any{"file_id": fid, "output_format": "webp"}})
		res.status(http.StatusAccepted)
		return res.job()["jobId"].(string)
	}
	first, second := create(), create()
	e.complete(first, domain.ResultFile{FileID: domain.NewFileID(), FileName: "out.webp", MimeType: "image/webp", SizeBytes: 3})
	c.do("DELETE", "/api/v1/jobs/"+first, nil).status(http.StatusNoContent)
	require.True(t, e.blobs.has(fid), "the queued job still reads the input")
	require.True(t, e.files.has(fid))
	c.do("DELETE", "/api/v1/jobs/"+second, nil).status(http.StatusNoContent)
	require.False(t, e.blobs.has(fid), "no job uses it any more")
}

func TestRetryJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	c.do("POST", "/api/v1/jobs/"+id+"/retry", nil).fail(409, "job_not_failed")
	e.fail(id)
	failed := c.do("GET", "/api/v1/jobs/"+id, nil).job()
	require.Equal(t, map[string]any{"code": "corrupt_input", "message": "not a PNG"}, failed["error"])

	e.anon().do("POST", "/api/v1/jobs/"+id+"/retry", nil).fail(404, "job_not_found")
	j := c.do("POST", "/api/v1/jobs/"+id+"/retry", nil).status(http.StatusOK).job()
	require.Equal(t, "queued", j["status"])
	require.EqualValues(t, 1, j["retryCount"])
	require.Nil(t, j["error"])
	c.do("POST", "/api/v1/jobs/"+id+"/retry", nil).fail(409, "job_not_failed")
	c.do("POST", "/api/v1/jobs/"+domain.NewJobID()+"/retry", nil).fail(404, "job_not_found")
}

func TestJobStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	e.complete(id, domain.ResultFile{FileID: domain.NewFileID(), FileName: "o.webp", MimeType: "image/webp", SizeBytes: 4})
	for _, hidden := range []bool{false, true} {
		if hidden {
			e.view.hide(id) // falls back to stats derived from the history
		}
		res := c.do("GET", "/api/v1/jobs/"+id+"/stats", nil).status(http.StatusOK)
		conform(t, "JobStats", res.Body.Bytes())
		var st map[string]any
		res.decode(&st)
		require.Equal(t, id, st["jobId"])
		require.EqualValues(t, 1, st["inputFilesCount"])
		require.EqualValues(t, 1, st["outputFilesCount"])
		require.EqualValues(t, 9, st["totalInputSizeBytes"])
		require.EqualValues(t, 4, st["totalOutputSizeBytes"])
		require.NotNil(t, st["processingTimeSeconds"])
	}
	e.anon().do("GET", "/api/v1/jobs/"+id+"/stats", nil).fail(404, "job_not_found")
	c.do("GET", "/api/v1/jobs/"+domain.NewJobID()+"/stats", nil).fail(404, "job_not_found")
}

func TestReportProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	path := "/api/v1/jobs/" + id + "/progress"
	body := map[string]any{"progress": 40, "message": "decoding"}

	c.do("PATCH", path, body).fail(403, "forbidden")
	e.bearer("wrong").do("PATCH", path, body).fail(403, "forbidden")
	e.bearer(adminToken).do("PATCH", path, body).fail(403, "forbidden")
	w := e.bearer(workerToken)
	w.do("PATCH", path, body).fail(409, "job_not_processing")

	e.start(id)
	j := w.do("PATCH", path, body).status(http.StatusOK).job()
	require.EqualValues(t, 40, j["progress"])
	require.Equal(t, "decoding", j["progressMessage"])
	require.Equal(t, "decoding", c.do("GET", "/api/v1/jobs/"+id, nil).job()["progressMessage"])

	w.do("PATCH", path, map[string]any{"progress": 101}).fail(422, "validation_error")
	w.do("PATCH", path, map[string]any{"progress": -1}).fail(422, "validation_error")
	w.do("PATCH", path, map[string]any{"message": "no progress"}).fail(422, "validation_error")
	w.do("PATCH", path, map[string]any{"progress": "half"}).fail(400, "invalid_json")
	w.do("PATCH", path, `{"progress": 4`).fail(400, "invalid_json")
	w.do("PATCH", "/api/v1/jobs/"+domain.NewJobID()+"/progress", body).fail(404, "job_not_found")

	t.Run("no worker token configured", func(t *testing.T) {
		e := newEnv(t, func(cfg *handlersConfig, _ *handlersDeps) { cfg.WorkerToken = "" })
		e.bearer("").do("PATCH", path, body).fail(403, "forbidden")
		e.bearer(workerToken).do("PATCH", path, body).fail(403, "forbidden")
	})
}
