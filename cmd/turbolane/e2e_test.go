package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convilyn/turbolane/projections"
)

// TestWalkthroughAnonymous is the README walk-through: presign, PUT, confirm,
// create a JPEG→WebP job, poll, download a real WebP.
func TestWalkthroughAnonymous(t *testing.T) {
	m := startServe(t)
	c := newClient(t, m.URL, "")
	jpg := testJPEG(t, 320, 200)

	res := c.postJSON("/api/v1/upload/presign", map[string]any{"fileName": "photo.jpg", "fileSize": len(jpg), "contentType": "image/jpeg"})
	mustStatus(t, res, http.StatusOK, "")
	var pre struct {
		FileID    string            `json:"fileId"`
		UploadURL string            `json:"uploadUrl"`
		Method    string            `json:"method"`
		Headers   map[string]string `json:"headers"`
	}
	res.json(t, &pre)
	if !strings.HasPrefix(pre.FileID, "file_") || pre.Method != http.MethodPut {
		t.Fatalf("presign: %s", res.Body)
	}
	if len(c.http.Jar.Cookies(mustURL(t, m.URL))) == 0 {
		t.Fatal("anonymous caller got no tl_session cookie")
	}
	hdr := []string{}
	for k, v := range pre.Headers {
		hdr = append(hdr, k, v)
	}
	put := c.do(http.MethodPut, pre.UploadURL, bytes.NewReader(jpg), "", hdr...)
	if put.Status != http.StatusOK {
		t.Fatalf("PUT upload: %d %s", put.Status, put.Body)
	}
	res = c.postJSON("/api/v1/upload/confirm", map[string]any{"fileId": pre.FileID})
	mustStatus(t, res, http.StatusOK, "")
	var file struct {
		FileSize int64  `json:"fileSize"`
		MimeType string `json:"mimeType"`
	}
	res.json(t, &file)
	if file.FileSize != int64(len(jpg)) {
		t.Fatalf("confirmed size %d, uploaded %d", file.FileSize, len(jpg))
	}

	job := c.createJob("image_conversion", map[string]any{"file_id": pre.FileID, "output_format": "webp", "quality": 80})
	if !strings.HasPrefix(job.JobID, "job_") || !strings.HasPrefix(job.UserID, "anon_") || job.Status != "queued" {
		t.Fatalf("created job: %+v", job)
	}
	// Read-your-writes: the very next GET sees the job.
	mustStatus(t, c.get("/api/v1/jobs/"+job.JobID), http.StatusOK, "")
	done := c.waitJob(job.JobID)
	if done.Status != "completed" || done.Progress != 100 || len(done.ResultFiles) != 1 {
		t.Fatalf("finished job: %+v", done)
	}
	rf := done.ResultFiles[0]
	if rf.MimeType != "image/webp" || !strings.HasSuffix(rf.FileName, ".webp") {
		t.Fatalf("result file: %+v", rf)
	}
	dl := c.download(rf.DownloadURL)
	if dl.Status != http.StatusOK || len(dl.Body) < 12 || string(dl.Body[0:4]) != "RIFF" || string(dl.Body[8:12]) != "WEBP" {
		t.Fatalf("download is not a WebP: %d %.20q", dl.Status, dl.Body)
	}
	if int64(len(dl.Body)) != rf.SizeBytes {
		t.Fatalf("downloaded %d bytes, resultFiles says %d", len(dl.Body), rf.SizeBytes)
	}

	// The auditor's view: the full history, oldest first.
	res = c.get("/api/v1/jobs/" + job.JobID + "/events")
	mustStatus(t, res, http.StatusOK, "")
	var hist struct {
		JobID  string `json:"jobId"`
		Events []struct {
			ID, Type, Subject string
			DataSchemaVersion int `json:"dataschemaversion"`
		} `json:"events"`
	}
	res.json(t, &hist)
	var types []string
	for _, e := range hist.Events {
		types = append(types, strings.TrimPrefix(e.Type, "com.convilyn.turbolane.job."))
		if e.Subject != job.JobID || e.DataSchemaVersion != 1 {
			t.Fatalf("event envelope: %+v", e)
		}
	}
	got := strings.Join(types, ",")
	if !strings.HasPrefix(got, "created,started") || !strings.HasSuffix(got, "completed") {
		t.Fatalf("history: %s", got)
	}

	// Stats.
	res = c.get("/api/v1/jobs/" + job.JobID + "/stats")
	mustStatus(t, res, http.StatusOK, "")
	var st struct {
		InputFilesCount, OutputFilesCount int
		TotalInputSizeBytes               int64
	}
	res.json(t, &st)
	if st.InputFilesCount != 1 || st.OutputFilesCount != 1 || st.TotalInputSizeBytes != int64(len(jpg)) {
		t.Fatalf("stats: %s", res.Body)
	}

	// Another anonymous user sees none of it.
	other := newClient(t, m.URL, "")
	mustStatus(t, other.get("/api/v1/jobs/"+job.JobID), http.StatusNotFound, "job_not_found")
	mustStatus(t, other.get("/api/v1/files/"+pre.FileID), http.StatusNotFound, "file_not_found")
	mustStatus(t, other.get("/api/v1/jobs/"+job.JobID+"/events"), http.StatusNotFound, "job_not_found")
}

// TestAPIKeyUserJourney covers admin keys, the one-step upload, compression,
// the list view, retry, delete with cleanup and the ZIP download.
func TestAPIKeyUserJourney(t *testing.T) {
	m := startServe(t)
	admin := newClient(t, m.URL, testAdminToken)
	res := admin.postJSON("/api/v1/admin/api-keys", map[string]any{"userId": "alice", "plan": "pro"})
	mustStatus(t, res, http.StatusCreated, "")
	var key struct{ APIKey, UserID, Plan string }
	res.json(t, &key)
	if key.APIKey == "" || key.UserID != "alice" || key.Plan != "pro" {
		t.Fatalf("api key: %s", res.Body)
	}
	mustStatus(t, newClient(t, m.URL, "wrong").postJSON("/api/v1/admin/api-keys", map[string]any{"userId": "x", "plan": "pro"}), http.StatusForbidden, "forbidden")

	c := newClient(t, m.URL, key.APIKey)
	big := testJPEG(t, 1200, 900)
	fileID := c.upload("big.jpg", big)
	comp := c.createJob("image_compression", map[string]any{"file_id": fileID, "quality": 40, "max_width": 600})
	conv := c.createJob("image_conversion", map[string]any{"file_id": fileID, "output_format": "png", "width": 100, "height": 100, "maintain_aspect": true})
	done := c.waitJob(comp.JobID)
	if done.Status != "completed" || done.ResultFiles[0].SizeBytes >= int64(len(big)) || done.ResultFiles[0].MimeType != "image/jpeg" {
		t.Fatalf("compression: %+v", done)
	}
	if j := c.waitJob(conv.JobID); j.Status != "completed" || j.ResultFiles[0].MimeType != "image/png" {
		t.Fatalf("conversion: %+v", j)
	}

	// A failing job, then retry: it fails again the same way.
	notImage := c.upload("notes.jpg", []byte("this is a text file, not a JPEG\n"))
	bad := c.createJob("image_conversion", map[string]any{"file_id": notImage, "output_format": "webp"})
	failed := c.waitJob(bad.JobID)
	if failed.Status != "failed" || failed.Error == nil || failed.Error.Code != "unsupported_format" {
		t.Fatalf("not-an-image job: %+v", failed)
	}
	res = c.do(http.MethodPost, "/api/v1/jobs/"+bad.JobID+"/retry", nil, "")
	mustStatus(t, res, http.StatusOK, "")
	var retried jobJSON
	res.json(t, &retried)
	if retried.Status != "queued" || retried.RetryCount != 1 || retried.Error != nil {
		t.Fatalf("retried: %s", res.Body)
	}
	if again := c.waitJob(bad.JobID); again.Status != "failed" || again.RetryCount != 1 {
		t.Fatalf("after retry: %+v", again)
	}
	mustStatus(t, c.do(http.MethodPost, "/api/v1/jobs/"+comp.JobID+"/retry", nil, ""), http.StatusConflict, "job_not_failed")

	// List: filters, sort, pagination.
	res = c.get("/api/v1/jobs?status=completed&sort_by=created_at&sort_order=asc&limit=1&page=2")
	mustStatus(t, res, http.StatusOK, "")
	var list struct {
		Jobs       []jobJSON
		Pagination struct{ Page, Limit, Total, TotalPages int }
	}
	res.json(t, &list)
	if list.Pagination.Total != 2 || list.Pagination.TotalPages != 2 || len(list.Jobs) != 1 || list.Jobs[0].JobID != conv.JobID {
		t.Fatalf("list: %s", res.Body)
	}
	res = c.get("/api/v1/jobs?processor_type=image_conversion")
	res.json(t, &list)
	if list.Pagination.Total != 2 {
		t.Fatalf("filter by type: %s", res.Body)
	}

	// ZIP of one completed and one failed job.
	res = c.postJSON("/api/v1/jobs/download", map[string]any{"jobIds": []string{comp.JobID, bad.JobID}})
	mustStatus(t, res, http.StatusOK, "")
	zr, err := zip.NewReader(bytes.NewReader(res.Body), int64(len(res.Body)))
	if err != nil {
		t.Fatalf("zip: %v", err)
	}
	names := map[string]bool{}
	var manifest map[string]any
	for _, f := range zr.File {
		names[f.Name] = true
		if f.Name == "manifest.json" {
			rc, _ := f.Open()
			_ = json.NewDecoder(rc).Decode(&manifest)
			rc.Close()
		}
	}
	if !names[comp.JobID+"/"+done.ResultFiles[0].FileName] || manifest == nil || !strings.Contains(fmtJSON(manifest), bad.JobID) {
		t.Fatalf("zip entries %v manifest %v", names, manifest)
	}
	mustStatus(t, c.postJSON("/api/v1/jobs/download", map[string]any{"jobIds": []string{bad.JobID}}), http.StatusNotFound, "no_completed_jobs")

	// Delete with cleanup removes the job and its files.
	mustStatus(t, c.do(http.MethodDelete, "/api/v1/jobs/"+comp.JobID, nil, ""), http.StatusNoContent, "")
	mustStatus(t, c.get("/api/v1/jobs/"+comp.JobID), http.StatusNotFound, "job_not_found")
	mustStatus(t, c.get("/api/v1/files/"+done.ResultFiles[0].FileID), http.StatusNotFound, "file_not_found")
	mustStatus(t, c.get("/api/v1/files/"+fileID), http.StatusNotFound, "file_not_found")
}

// TestBadInput sends every kind of bad request and checks status and code;
// the service keeps serving afterwards.
func TestBadInput(t *testing.T) {
	m := startServe(t, func(c *Config) { c.PlanLimits = "anonymous=64KiB" })
	c := newClient(t, m.URL, "")
	small := c.upload("a.jpg", testJPEG(t, 64, 64))
	post := func(path, body string) response {
		return c.do(http.MethodPost, path, strings.NewReader(body), "application/json")
	}
	cases := []struct {
		name   string
		res    func() response
		status int
		code   string
	}{
		{"malformed json", func() response { return post("/api/v1/jobs", `{"processor_type":`) }, 400, "invalid_json"},
		{"wrong types", func() response { return post("/api/v1/jobs", `{"processor_type":7,"params":{}}`) }, 400, "invalid_json"},
		{"missing processor_type", func() response { return post("/api/v1/jobs", `{"params":{"file_id":"`+small+`"}}`) }, 422, "validation_error"},
		{"missing file_id", func() response {
			return post("/api/v1/jobs", `{"processor_type":"image_conversion","params":{"output_format":"png"}}`)
		}, 422, "validation_error"},
		{"unknown processor", func() response {
			return post("/api/v1/jobs", `{"processor_type":"teleport","params":{"file_id":"`+small+`"}}`)
		}, 422, "validation_error"},
		{"unknown format", func() response {
			return post("/api/v1/jobs", `{"processor_type":"image_conversion","params":{"file_id":"`+small+`","output_format":"xcf"}}`)
		}, 422, "unsupported_format"},
		{"quality 0", func() response {
			return post("/api/v1/jobs", `{"processor_type":"image_conversion","params":{"file_id":"`+small+`","output_format":"png","quality":0}}`)
		}, 422, "validation_error"},
		{"unknown file", func() response {
			return post("/api/v1/jobs", `{"processor_type":"image_conversion","params":{"file_id":"file_00000000000000000000000000","output_format":"png"}}`)
		}, 404, "file_not_found"},
		{"batch of 0", func() response {
			return post("/api/v1/jobs/batch", `{"processorType":"image_conversion","outputFormat":"png","items":[]}`)
		}, 422, "validation_error"},
		{"batch of 21", func() response {
			items := strings.Repeat(`{"fileId":"`+small+`"},`, 21)
			return post("/api/v1/jobs/batch", `{"processorType":"image_conversion","outputFormat":"png","items":[`+strings.TrimSuffix(items, ",")+`]}`)
		}, 422, "validation_error"},
		{"limit 0", func() response { return c.get("/api/v1/jobs?limit=0") }, 422, "validation_error"},
		{"limit 101", func() response { return c.get("/api/v1/jobs?limit=101") }, 422, "validation_error"},
		{"page 0", func() response { return c.get("/api/v1/jobs?page=0") }, 422, "validation_error"},
		{"unknown status", func() response { return c.get("/api/v1/jobs?status=exploded") }, 422, "validation_error"},
		{"unknown job", func() response { return c.get("/api/v1/jobs/job_00000000000000000000000000") }, 404, "job_not_found"},
		{"garbage job id", func() response { return c.get("/api/v1/jobs/job_%2A%3E") }, 404, "job_not_found"},
		{"unknown file record", func() response { return c.get("/api/v1/files/file_00000000000000000000000000") }, 404, "file_not_found"},
		{"presign over plan", func() response {
			return post("/api/v1/upload/presign", `{"fileName":"big.jpg","fileSize":10485760,"contentType":"image/jpeg"}`)
		}, 413, "file_too_large"},
		{"multipart over plan", func() response { return c.uploadRaw("big.jpg", make([]byte, 70<<10)) }, 413, "file_too_large"},
		{"invalid bearer", func() response { return newClient(t, m.URL, "tl_nope").get("/api/v1/jobs") }, 401, "unauthorized"},
		{"progress without worker token", func() response {
			return c.do(http.MethodPatch, "/api/v1/jobs/job_00000000000000000000000000/progress", strings.NewReader(`{"progress":5}`), "application/json")
		}, 403, "forbidden"},
		{"bad presigned signature", func() response {
			return c.do(http.MethodPut, m.URL+"/blobs/"+small+"?op=put&exp=9999999999&max=10&ct=image%2Fjpeg&sig=00", strings.NewReader("x"), "")
		}, 403, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustStatus(t, tc.res(), tc.status, tc.code)
		})
	}

	// Confirm checks the real size: declare small, upload big.
	res := post("/api/v1/upload/presign", `{"fileName":"liar.jpg","fileSize":100,"contentType":"image/jpeg"}`)
	mustStatus(t, res, http.StatusOK, "")
	var pre struct{ FileID, UploadURL string }
	res.json(t, &pre)
	put := c.do(http.MethodPut, pre.UploadURL, bytes.NewReader(make([]byte, 70<<10)), "image/jpeg")
	if put.Status != http.StatusRequestEntityTooLarge && put.Status != http.StatusOK {
		t.Fatalf("oversize PUT: %d %s", put.Status, put.Body)
	}
	if put.Status == http.StatusOK {
		mustStatus(t, post("/api/v1/upload/confirm", `{"fileId":"`+pre.FileID+`"}`), 413, "file_too_large")
	}

	// Progress on a queued job with the worker token → 409.
	job := c.createJob("image_conversion", map[string]any{"file_id": small, "output_format": "png"})
	worker := newClient(t, m.URL, testWorkerToken)
	res = worker.do(http.MethodPatch, "/api/v1/jobs/"+job.JobID+"/progress", strings.NewReader(`{"progress":150}`), "application/json")
	if res.Status != 422 && res.Status != 409 {
		t.Fatalf("progress 150: %d %s", res.Status, res.Body)
	}
	c.waitJob(job.JobID)
	mustStatus(t, worker.do(http.MethodPatch, "/api/v1/jobs/"+job.JobID+"/progress", strings.NewReader(`{"progress":50}`), "application/json"), 409, "job_not_processing")

	// A decompression bomb fails with input_too_large; the service goes on.
	bombID := c.upload("bomb.png", pngBomb(100000, 100000))
	bomb := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": bombID, "output_format": "webp"}).JobID)
	if bomb.Status != "failed" || bomb.Error.Code != "input_too_large" {
		t.Fatalf("bomb: %+v", bomb)
	}
	truncated := testJPEG(t, 200, 200)
	truncID := c.upload("cut.jpg", truncated[:len(truncated)/2])
	cut := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": truncID, "output_format": "png"}).JobID)
	if cut.Status != "failed" || cut.Error.Code != "corrupt_input" {
		t.Fatalf("truncated: %+v", cut)
	}
	mustStatus(t, c.get("/healthz"), http.StatusOK, "")
	mustStatus(t, c.get("/readyz"), http.StatusOK, "")
}

// pngBomb is a tiny PNG whose header claims w×h pixels.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n"))
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// TestReplayEqualsLiveViews runs concurrent jobs, then rebuilds the views
// from sequence 1 and compares them with the live ones; after a restart the
// views resume from their checkpoint.
func TestReplayEqualsLiveViews(t *testing.T) {
	m := startServe(t)
	var wg sync.WaitGroup
	for u := 0; u < 4; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, m.URL, "")
			f := c.upload("p.jpg", testJPEG(t, 96, 64))
			var first string
			for i := 0; i < 3; i++ {
				j := c.createJob("image_conversion", map[string]any{"file_id": f, "output_format": []string{"webp", "png", "gif"}[i]})
				c.waitJob(j.JobID)
				if first == "" {
					first = j.JobID
				}
			}
			bad := c.upload("bad.jpg", []byte("nope"))
			j := c.createJob("image_compression", map[string]any{"file_id": bad})
			c.waitJob(j.JobID)
			c.do(http.MethodPost, "/api/v1/jobs/"+j.JobID+"/retry", nil, "")
			c.waitJob(j.JobID)
			mustStatus(t, c.do(http.MethodDelete, "/api/v1/jobs/"+first+"?cleanup_files=false", nil, ""), http.StatusNoContent, "")
		}()
	}
	wg.Wait()

	ctx := context.Background()
	last, err := m.Store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.View.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	rebuilt := filepath.Join(t.TempDir(), "rebuilt.db")
	if _, err := rebuild(ctx, m, rebuilt); err != nil {
		t.Fatal(err)
	}
	b, err := projections.Open(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	diffs, err := diffViews(ctx, m.View, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("rebuilt views differ:\n%s", strings.Join(diffs, "\n"))
	}
	snap, _ := m.View.Snapshot(ctx)
	if len(snap) != 12 { // 16 jobs, 4 deleted
		t.Fatalf("live view has %d jobs, want 12", len(snap))
	}
}

// TestRestartKeepsJobs stops serve and starts it again on the same data dir:
// jobs, files and the session survive.
func TestRestartKeepsJobs(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	m := startServe(t, cfg)
	c := newClient(t, m.URL, "")
	f := c.upload("p.jpg", testJPEG(t, 50, 50))
	j := c.waitJob(c.createJob("image_conversion", map[string]any{"file_id": f, "output_format": "png"}).JobID)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startServe(t, cfg)
	c.base = m2.URL
	res := c.get("/api/v1/jobs/" + j.JobID)
	mustStatus(t, res, http.StatusOK, "")
	var again jobJSON
	res.json(t, &again)
	if again.Status != "completed" {
		t.Fatalf("after restart: %s", res.Body)
	}
	dl := c.download(strings.Replace(again.ResultFiles[0].DownloadURL, m.URL, m2.URL, 1))
	if dl.Status != http.StatusOK {
		t.Fatalf("download after restart: %d", dl.Status)
	}
	_ = io.Discard
	_ = time.Second
}
