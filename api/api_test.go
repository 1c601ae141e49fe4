package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/api"
	"github.com/convilyn/turbolane/domain"
)

// loadSpec loads and validates the embedded document; every test starts here
// so that a broken spec fails loudly rather than as a nil dereference.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	require.NoError(t, err, "load openapi.yaml")
	require.NoError(t, doc.Validate(context.Background()), "validate openapi.yaml")
	return doc
}

func TestSpecLoadsAndValidates(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	require.Equal(t, "3.0.3", doc.OpenAPI)
	require.Len(t, doc.Servers, 1)
	require.Equal(t, "/", doc.Servers[0].URL)
}

// contract is DESIGN.md Part 1's endpoint table (plus the operational
// endpoints and the embedded store's presigned URL), with the success status
// and every error status the contract names for the endpoint.
var contract = []struct {
	method  string
	path    string
	success []string
	errors  []string
}{
	{http.MethodPost, "/api/v1/admin/api-keys", []string{"201"}, []string{"400", "403", "422", "429", "500"}},
	{http.MethodPost, "/api/v1/upload/presign", []string{"200"}, []string{"400", "401", "413", "422", "429", "500"}},
	{http.MethodPost, "/api/v1/upload/confirm", []string{"200"}, []string{"400", "401", "404", "413", "422", "429", "500"}},
	{http.MethodPost, "/api/v1/upload", []string{"201"}, []string{"400", "401", "413", "422", "429", "500"}},
	{http.MethodGet, "/api/v1/files/{file_id}", []string{"200"}, []string{"401", "404", "429", "500"}},
	{http.MethodGet, "/api/v1/files/{file_id}/download", []string{"200", "302"}, []string{"401", "404", "429", "500"}},
	{http.MethodPost, "/api/v1/jobs", []string{"202"}, []string{"400", "401", "404", "422", "429", "500"}},
	{http.MethodPost, "/api/v1/jobs/batch", []string{"202"}, []string{"400", "401", "404", "422", "429", "500"}},
	{http.MethodGet, "/api/v1/jobs", []string{"200"}, []string{"401", "422", "429", "500"}},
	{http.MethodGet, "/api/v1/jobs/{job_id}", []string{"200"}, []string{"401", "404", "429", "500"}},
	{http.MethodDelete, "/api/v1/jobs/{job_id}", []string{"204"}, []string{"401", "404", "429", "500"}},
	{http.MethodPost, "/api/v1/jobs/{job_id}/retry", []string{"200"}, []string{"401", "404", "409", "429", "500"}},
	{http.MethodPatch, "/api/v1/jobs/{job_id}/progress", []string{"200"}, []string{"400", "403", "404", "409", "422", "500"}},
	{http.MethodGet, "/api/v1/jobs/{job_id}/stats", []string{"200"}, []string{"401", "404", "429", "500"}},
	{http.MethodPost, "/api/v1/jobs/download", []string{"200"}, []string{"400", "401", "404", "422", "429", "500"}},
	{http.MethodGet, "/api/v1/jobs/{job_id}/events", []string{"200"}, []string{"401", "404", "429", "500"}},
	{http.MethodGet, "/api/v1/processors", []string{"200"}, []string{"429", "500"}},
	{http.MethodGet, "/api/v1/openapi.yaml", []string{"200"}, []string{"429"}},
	{http.MethodGet, "/healthz", []string{"200"}, nil},
	{http.MethodGet, "/readyz", []string{"200"}, []string{"503"}},
	{http.MethodGet, "/metrics", []string{"200"}, nil},
	{http.MethodPut, "/blobs/{key}", []string{"200"}, []string{"403", "413"}},
	{http.MethodGet, "/blobs/{key}", []string{"200"}, []string{"403", "404"}},
}

func TestContractPathsAndStatuses(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	for _, c := range contract {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			t.Parallel()
			item := doc.Paths.Find(c.path)
			require.NotNil(t, item, "path %s is missing", c.path)
			op := item.GetOperation(c.method)
			require.NotNil(t, op, "%s %s is missing", c.method, c.path)
			require.NotEmpty(t, op.OperationID)
			for _, code := range append(slices.Clone(c.success), c.errors...) {
				require.NotNil(t, op.Responses.Value(code), "%s %s does not document %s", c.method, c.path, code)
			}
		})
	}
}

// TestNoUndocumentedOperations keeps the table above and the spec in step in
// the other direction: an operation added to the spec must be added to the
// contract table (and so to DESIGN.md) too.
func TestNoUndocumentedOperations(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	want := map[string]bool{}
	for _, c := range contract {
		want[c.method+" "+c.path] = true
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			require.True(t, want[method+" "+path], "%s %s is in the spec but not in the contract table", method, path)
		}
	}
}

// TestErrorResponses checks that every non-2xx/3xx answer is the contract's
// {detail, code} body and that every 429 says when to come back.
func TestErrorResponses(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	errSchema := doc.Components.Schemas["Error"]
	require.NotNil(t, errSchema)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				if code[0] == '2' || code[0] == '3' {
					continue
				}
				where := method + " " + path + " " + code
				mt := ref.Value.Content.Get("application/json")
				require.NotNil(t, mt, "%s: error without a JSON body", where)
				if path == "/readyz" {
					// The readiness failure carries the Error fields plus the checks.
					require.Equal(t, "#/components/schemas/NotReady", mt.Schema.Ref, where)
					continue
				}
				require.Equal(t, "#/components/schemas/Error", mt.Schema.Ref, "%s: error body is not Error", where)
				if code == "429" {
					require.NotNil(t, ref.Value.Headers["Retry-After"], "%s: no Retry-After", where)
				}
			}
		}
	}
}

func TestSecuritySchemes(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	s := doc.Components.SecuritySchemes
	for _, name := range []string{"apiKey", "adminToken", "workerToken"} {
		require.Contains(t, s, name)
		require.Equal(t, "http", s[name].Value.Type, name)
		require.Equal(t, "bearer", s[name].Value.Scheme, name)
	}
	require.Contains(t, s, "session")
	require.Equal(t, "apiKey", s["session"].Value.Type)
	require.Equal(t, "cookie", s["session"].Value.In)
	require.Equal(t, "tl_session", s["session"].Value.Name)

	admin := doc.Paths.Find("/api/v1/admin/api-keys").Post
	require.Equal(t, openapi3.SecurityRequirements{{"adminToken": {}}}, *admin.Security)
	progress := doc.Paths.Find("/api/v1/jobs/{job_id}/progress").Patch
	require.Equal(t, openapi3.SecurityRequirements{{"workerToken": {}}}, *progress.Security)
}

// TestExactFields pins the field lists the contract fixes: these schemas are
// closed and every field is required.
func TestExactFields(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	tests := []struct {
		schema string
		fields []string
	}{
		{"Job", []string{"jobId", "userId", "status", "processorType", "progress", "progressMessage", "params", "resultFiles", "error", "retryCount", "createdAt", "updatedAt", "startedAt", "completedAt", "estimatedDuration"}},
		{"ResultFile", []string{"fileId", "fileName", "mimeType", "sizeBytes", "downloadUrl"}},
		{"JobStats", []string{"jobId", "status", "processorType", "progress", "inputFilesCount", "outputFilesCount", "totalInputSizeBytes", "totalOutputSizeBytes", "processingTimeSeconds", "retryCount", "createdAt", "updatedAt", "completedAt"}},
		{"File", []string{"fileId", "fileName", "fileSize", "mimeType", "createdAt"}},
		{"Error", []string{"detail", "code"}},
		{"Pagination", []string{"page", "limit", "total", "totalPages"}},
		{"PresignResponse", []string{"fileId", "uploadUrl", "method", "headers", "expiresAt"}},
		{"ApiKeyResponse", []string{"apiKey", "userId", "plan"}},
		{"CloudEvent", []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschemaversion", "data"}},
		{"JobEvents", []string{"jobId", "events"}},
		{"JobError", []string{"code", "message"}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			t.Parallel()
			ref := doc.Components.Schemas[tt.schema]
			require.NotNil(t, ref)
			s := ref.Value
			require.NotNil(t, s.AdditionalProperties.Has, "%s must set additionalProperties", tt.schema)
			require.False(t, *s.AdditionalProperties.Has, "%s must be closed", tt.schema)
			props := make([]string, 0, len(s.Properties))
			for name := range s.Properties {
				props = append(props, name)
			}
			want := slices.Clone(tt.fields)
			sort.Strings(want)
			sort.Strings(props)
			require.Equal(t, want, props, "%s properties", tt.schema)
			req := slices.Clone(s.Required)
			sort.Strings(req)
			require.Equal(t, want, req, "%s required", tt.schema)
		})
	}
}

// visit validates a JSON document against a component schema the way a
// client would after decoding it.
func visit(t *testing.T, doc *openapi3.T, schema, body string) error {
	t.Helper()
	ref := doc.Components.Schemas[schema]
	require.NotNil(t, ref, "schema %s", schema)
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), "test body for %s", schema)
	return ref.Value.VisitJSON(v)
}

const validJob = `{
  "jobId": "job_01hzx3k7q9m2n4p6r8t0v2w4y6", "userId": "anon_x", "status": "failed",
  "processorType": "image_conversion", "progress": 40, "progressMessage": "",
  "params": {"file_id": "file_7m3k9q2x4v6b8n0p1r3t5w7y9z", "output_format": "webp"},
  "resultFiles": [], "error": {"code": "corrupt_input", "message": "not a JPEG"},
  "retryCount": 0, "createdAt": "2026-12-03T09:00:00Z", "updatedAt": "2026-12-03T09:00:01Z",
  "startedAt": "2026-12-03T09:00:00.5Z", "completedAt": "2026-12-03T09:00:01Z",
  "estimatedDuration": null
}`

func TestSchemasAcceptAndReject(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	tests := []struct {
		name   string
		schema string
		body   string
		ok     bool
	}{
		{"failed job", "Job", validJob, true},
		{"queued job with nulls", "Job", strings.NewReplacer(
			`"error": {"code": "corrupt_input", "message": "not a JPEG"}`, `"error": null`,
			`"startedAt": "2026-12-03T09:00:00.5Z"`, `"startedAt": null`,
			`"completedAt": "2026-12-03T09:00:01Z"`, `"completedAt": null`,
			`"estimatedDuration": null`, `"estimatedDuration": 1.5`,
		).Replace(validJob), true},
		{"job with an extra field", "Job", strings.Replace(validJob, `"retryCount": 0`, `"retryCount": 0, "lease": "x"`, 1), false},
		{"job without estimatedDuration", "Job", strings.Replace(validJob, `,
  "estimatedDuration": null`, "", 1), false},
		{"job with unknown status", "Job", strings.Replace(validJob, `"failed"`, `"running"`, 1), false},
		{"job with progress 101", "Job", strings.Replace(validJob, `"progress": 40`, `"progress": 101`, 1), false},
		{"job with a bad id", "Job", strings.Replace(validJob, `"job_01hz`, `"jb_01hz`, 1), false},
		{"job with a null resultFiles", "Job", strings.Replace(validJob, `"resultFiles": []`, `"resultFiles": null`, 1), false},
		{"job error with extra field", "Job", strings.Replace(validJob, `"message": "not a JPEG"`, `"message": "x", "stack": "y"`, 1), false},
		{"job with a bad timestamp", "Job", strings.Replace(validJob, `"2026-12-03T09:00:00Z"`, `"yesterday"`, 1), false},
		{"error", "Error", `{"detail": "job not found", "code": "job_not_found"}`, true},
		{"error with extra field", "Error", `{"detail": "x", "code": "x", "trace": "y"}`, false},
		{"file", "File", `{"fileId": "file_7m3k9q2x4v6b8n0p1r3t5w7y9z", "fileName": "a.jpg", "fileSize": 3, "mimeType": "image/jpeg", "createdAt": "2026-12-03T09:00:00Z"}`, true},
		{"file with a job id", "File", `{"fileId": "job_7m3k9q2x4v6b8n0p1r3t5w7y9z", "fileName": "a.jpg", "fileSize": 3, "mimeType": "image/jpeg", "createdAt": "2026-12-03T09:00:00Z"}`, false},
		{"file with internal fields", "File", `{"fileId": "file_7m3k9q2x4v6b8n0p1r3t5w7y9z", "fileName": "a.jpg", "fileSize": 3, "mimeType": "image/jpeg", "createdAt": "2026-12-03T09:00:00Z", "userId": "u"}`, false},
		{"presign response", "PresignResponse", `{"fileId": "file_x", "uploadUrl": "http://h/blobs/file_x?op=put", "method": "PUT", "headers": {"Content-Type": "image/png"}, "expiresAt": "2026-12-03T09:15:00Z"}`, true},
		{"presign response with non-string header", "PresignResponse", `{"fileId": "file_x", "uploadUrl": "u", "method": "PUT", "headers": {"Content-Length": 3}, "expiresAt": "2026-12-03T09:15:00Z"}`, false},
		{"api key", "ApiKeyResponse", `{"apiKey": "tl_x", "userId": "alice", "plan": "business"}`, true},
		{"api key with anonymous plan", "ApiKeyResponse", `{"apiKey": "tl_x", "userId": "alice", "plan": "anonymous"}`, false},
		{"create api key", "CreateApiKey", `{"userId": "alice@example.com", "plan": "free"}`, true},
		{"create api key, bad plan", "CreateApiKey", `{"userId": "alice", "plan": "gold"}`, false},
		{"create job", "CreateJob", `{"processor_type": "image_conversion", "params": {"file_id": "file_x", "output_format": "webp", "quality": 80}}`, true},
		{"create job, camelCase", "CreateJob", `{"processorType": "image_conversion", "params": {"file_id": "file_x"}}`, false},
		// The server, not the schema, answers these with 422, so the schema
		// must let them through.
		{"create job, quality 0", "CreateJob", `{"processor_type": "image_conversion", "params": {"file_id": "file_x", "quality": 0}}`, true},
		{"create job, missing file_id", "CreateJob", `{"processor_type": "image_conversion", "params": {"output_format": "webp"}}`, true},
		{"create job, quality as string", "CreateJob", `{"processor_type": "image_conversion", "params": {"file_id": "file_x", "quality": "high"}}`, false},
		{"image conversion params", "ImageConversionParams", `{"file_id": "file_x", "output_format": "png", "quality": 1}`, true},
		{"image conversion params, quality 0", "ImageConversionParams", `{"file_id": "file_x", "output_format": "png", "quality": 0}`, false},
		{"pdf merge params", "PDFOperationsParams", `{"operation": "merge", "file_ids": ["file_a", "file_b"]}`, true},
		{"batch", "BatchCreate", `{"processorType": "image_conversion", "outputFormat": "webp", "items": [{"fileId": "file_a"}, {"fileId": "file_b", "params": {"quality": 60}}]}`, true},
		{"batch, no items", "BatchCreate", `{"processorType": "image_conversion", "outputFormat": "webp", "items": []}`, false},
		{"batch, 21 items", "BatchCreate", `{"processorType": "image_conversion", "items": [` + strings.Repeat(`{"fileId": "file_a"},`, 20) + `{"fileId": "file_a"}]}`, false},
		{"batch, snake_case item", "BatchCreate", `{"processorType": "image_conversion", "items": [{"file_id": "file_a"}]}`, false},
		{"download", "DownloadRequest", `{"jobIds": ["job_a"]}`, true},
		{"download, 21 jobs", "DownloadRequest", `{"jobIds": [` + strings.Repeat(`"job_a",`, 20) + `"job_a"]}`, false},
		{"progress", "ProgressUpdate", `{"progress": 100, "message": "done"}`, true},
		{"progress over 100", "ProgressUpdate", `{"progress": 101}`, false},
		{"presign", "PresignRequest", `{"fileName": "a.pdf", "fileSize": 10, "contentType": "application/pdf"}`, true},
		{"confirm", "ConfirmRequest", `{"fileId": "file_x"}`, true},
		{"pagination", "Pagination", `{"page": 1, "limit": 20, "total": 0, "totalPages": 0}`, true},
		{"cloud event", "CloudEvent", `{"specversion": "1.0", "id": "cmd_1", "source": "turbolane", "type": "com.convilyn.turbolane.job.completed", "subject": "job_x", "time": "2026-12-03T09:00:00Z", "datacontenttype": "application/json", "dataschemaversion": 1, "data": {"resultFiles": [], "processingTimeSeconds": 0.5}}`, true},
		{"cloud event, unknown type", "CloudEvent", `{"specversion": "1.0", "id": "cmd_1", "source": "turbolane", "type": "com.convilyn.turbolane.job.paused", "subject": "job_x", "time": "2026-12-03T09:00:00Z", "datacontenttype": "application/json", "dataschemaversion": 1, "data": {}}`, false},
		{"cloud event, version 0", "CloudEvent", `{"specversion": "1.0", "id": "cmd_1", "source": "turbolane", "type": "com.convilyn.turbolane.job.created", "subject": "job_x", "time": "2026-12-03T09:00:00Z", "datacontenttype": "application/json", "dataschemaversion": 0, "data": {}}`, false},
		{"cloud event, specversion 0.3", "CloudEvent", `{"specversion": "0.3", "id": "cmd_1", "source": "turbolane", "type": "com.convilyn.turbolane.job.created", "subject": "job_x", "time": "2026-12-03T09:00:00Z", "datacontenttype": "application/json", "dataschemaversion": 1, "data": {}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := visit(t, doc, tt.schema, tt.body)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// TestDomainShapesMatch checks that what the domain package serialises fits
// the spec, so the two cannot drift apart silently.
func TestDomainShapesMatch(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}

	t.Run("processor catalog", func(t *testing.T) {
		catalog := map[string]any{
			"processors": domain.Specs(),
			"limits":     map[string]any{"plans": domain.DefaultPlanLimits()},
		}
		require.NoError(t, visit(t, doc, "ProcessorCatalog", mustJSON(catalog)))
	})

	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	in := domain.InputFile{FileID: domain.NewFileID(), FileName: "a.jpg", MimeType: "image/jpeg", SizeBytes: 10}
	out := domain.ResultFile{FileID: domain.NewFileID(), FileName: "a.webp", MimeType: "image/webp", SizeBytes: 4}
	payloads := []struct {
		schema string
		data   domain.EventData
	}{
		{"CreatedData", domain.Created{UserID: "u", ProcessorType: domain.ImageConversion, Params: map[string]any{"file_id": in.FileID}, InputFiles: []domain.InputFile{in}, Pool: domain.PoolStandard}},
		{"StartedData", domain.Started{Attempt: 0, WorkerID: "w1", Lease: "l1"}},
		{"StartedData", domain.Started{Attempt: 1, WorkerID: "w2", Lease: "l2", Takeover: true}},
		{"ProgressedData", domain.Progressed{Progress: 50}},
		{"CompletedData", domain.Completed{Lease: "l1", ResultFiles: []domain.ResultFile{out}, ProcessingTimeSeconds: 1.5}},
		{"FailedData", domain.Failed{Error: domain.JobError{Code: domain.CodeWorkerLost, Message: "gone"}}},
		{"RetriedData", domain.Retried{RetryCount: 1}},
		{"DeletedData", domain.Deleted{CleanupFiles: true}},
	}
	for _, p := range payloads {
		t.Run(p.schema, func(t *testing.T) {
			require.NoError(t, visit(t, doc, p.schema, mustJSON(p.data)))
		})
	}

	t.Run("job stats", func(t *testing.T) {
		j := domain.Fold([]domain.Event{
			{JobID: domain.NewJobID(), Type: domain.EventCreated, Time: now, Data: payloads[0].data},
			{Type: domain.EventStarted, Time: now, Data: payloads[1].data},
		})
		require.NoError(t, visit(t, doc, "JobStats", mustJSON(domain.StatsOf(j))))
		j = domain.Apply(j, domain.Event{Type: domain.EventCompleted, Time: now.Add(time.Second), Data: payloads[4].data})
		require.NoError(t, visit(t, doc, "JobStats", mustJSON(domain.StatsOf(j))))
	})

	t.Run("statuses", func(t *testing.T) {
		var got []string
		for _, v := range doc.Components.Schemas["Status"].Value.Enum {
			got = append(got, v.(string))
		}
		require.Equal(t, []string{string(domain.StatusQueued), string(domain.StatusProcessing), string(domain.StatusCompleted), string(domain.StatusFailed)}, got)
	})

	t.Run("processor types", func(t *testing.T) {
		var got []string
		for _, v := range doc.Components.Schemas["ProcessorType"].Value.Enum {
			got = append(got, v.(string))
		}
		require.Equal(t, domain.ProcessorTypes(), got)
	})

	t.Run("event types", func(t *testing.T) {
		pattern := doc.Components.Schemas["CloudEvent"].Value.Properties["type"].Value.Pattern
		for _, et := range domain.EventTypes {
			require.Contains(t, pattern, string(et))
		}
	})
}

func TestListJobsQuery(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	op := doc.Paths.Find("/api/v1/jobs").Get
	params := map[string]*openapi3.Schema{}
	for _, p := range op.Parameters {
		require.Equal(t, "query", p.Value.In)
		params[p.Value.Name] = p.Value.Schema.Value
	}
	require.ElementsMatch(t, []string{"status", "processor_type", "sort_by", "sort_order", "page", "limit"}, keys(params))
	require.ElementsMatch(t, []any{"createdAt", "updatedAt", "status", "created_at", "updated_at"}, params["sort_by"].Enum)
	require.ElementsMatch(t, []any{"asc", "desc"}, params["sort_order"].Enum)
	require.Equal(t, "desc", params["sort_order"].Default)
	require.EqualValues(t, 1, *params["page"].Min)
	require.EqualValues(t, 1, *params["limit"].Min)
	require.EqualValues(t, 100, *params["limit"].Max)
	require.EqualValues(t, 20, params["limit"].Default)

	del := doc.Paths.Find("/api/v1/jobs/{job_id}").Delete
	require.Len(t, del.Parameters, 1)
	require.Equal(t, "cleanup_files", del.Parameters[0].Value.Name)
	require.Equal(t, true, del.Parameters[0].Value.Schema.Value.Default)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestEventsDocExamples keeps docs/events.md honest: every complete JSON
// example in it must be a CloudEvent the spec accepts, whose data the domain
// decodes and whose payload schema in the spec accepts it too.
func TestEventsDocExamples(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	md, err := os.ReadFile("../docs/events.md")
	require.NoError(t, err)
	seen := map[domain.EventType]int{}
	for _, block := range strings.Split(string(md), "```json\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		require.True(t, ok, "unterminated JSON block in docs/events.md")
		if strings.Contains(body, `"..."`) {
			continue // an abridged illustration, not an example
		}
		var ev struct {
			Type              string          `json:"type"`
			DataSchemaVersion int             `json:"dataschemaversion"`
			Data              json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &ev), "example is not JSON:\n%s", body)
		require.NoError(t, visit(t, doc, "CloudEvent", body), "example is not a CloudEvent:\n%s", body)
		et := domain.EventType(strings.TrimPrefix(ev.Type, "com.convilyn.turbolane.job."))
		_, err := domain.DecodeEventData(et, ev.DataSchemaVersion, ev.Data)
		require.NoError(t, err, "domain cannot decode the %s example", et)
		schema := strings.ToUpper(string(et[:1])) + string(et[1:]) + "Data"
		require.NoError(t, visit(t, doc, schema, string(ev.Data)), "%s example data", et)
		seen[et]++
	}
	for _, et := range domain.EventTypes {
		require.NotZero(t, seen[et], "docs/events.md has no example of %s", et)
	}
}
