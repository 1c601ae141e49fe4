package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/convilyn/turbolane/domain"
)

// jobJSON is the Job of the contract, exactly.
type jobJSON struct {
	JobID             string               `json:"jobId"`
	UserID            string               `json:"userId"`
	Status            domain.Status        `json:"status"`
	ProcessorType     domain.ProcessorType `json:"processorType"`
	Progress          int                  `json:"progress"`
	ProgressMessage   string               `json:"progressMessage"`
	Params            map[string]any       `json:"params"`
	ResultFiles       []resultFileJSON     `json:"resultFiles"`
	Error             *domain.JobError     `json:"error"`
	RetryCount        int                  `json:"retryCount"`
	CreatedAt         string               `json:"createdAt"`
	UpdatedAt         string               `json:"updatedAt"`
	StartedAt         *string              `json:"startedAt"`
	CompletedAt       *string              `json:"completedAt"`
	EstimatedDuration *float64             `json:"estimatedDuration"`
}

type resultFileJSON struct {
	FileID      string `json:"fileId"`
	FileName    string `json:"fileName"`
	MimeType    string `json:"mimeType"`
	SizeBytes   int64  `json:"sizeBytes"`
	DownloadURL string `json:"downloadUrl"`
}

// jobWriter renders jobs for one request, asking the view for each
// processor type's estimate once.
type jobWriter struct {
	s         *server
	r         *http.Request
	base      string
	estimates map[domain.ProcessorType]*float64
}

func (s *server) jobWriter(r *http.Request) *jobWriter {
	return &jobWriter{s: s, r: r, base: s.baseURL(r), estimates: map[domain.ProcessorType]*float64{}}
}

// baseURL is the configured public URL, or the one the request came to.
func (s *server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (jw *jobWriter) estimate(t domain.ProcessorType) *float64 {
	if e, ok := jw.estimates[t]; ok {
		return e
	}
	e, err := jw.s.deps.Jobs.EstimatedDuration(jw.r.Context(), t)
	if err != nil {
		jw.s.log.Warn("estimate job duration", "processor_type", t, "err", err)
		e = nil
	}
	jw.estimates[t] = e
	return e
}

func (jw *jobWriter) job(j domain.Job) jobJSON {
	out := jobJSON{
		JobID: j.ID, UserID: j.UserID, Status: j.Status, ProcessorType: j.ProcessorType,
		Progress: j.Progress, ProgressMessage: j.ProgressMessage, Params: j.Params,
		ResultFiles: make([]resultFileJSON, 0, len(j.ResultFiles)), Error: j.Error, RetryCount: j.RetryCount,
		CreatedAt: timestamp(j.CreatedAt), UpdatedAt: timestamp(j.UpdatedAt),
		StartedAt: optTimestamp(j.StartedAt), CompletedAt: optTimestamp(j.CompletedAt),
		EstimatedDuration: jw.estimate(j.ProcessorType),
	}
	if out.Params == nil {
		out.Params = map[string]any{}
	}
	for _, f := range j.ResultFiles {
		out.ResultFiles = append(out.ResultFiles, resultFileJSON{
			FileID: f.FileID, FileName: f.FileName, MimeType: f.MimeType, SizeBytes: f.SizeBytes,
			DownloadURL: jw.base + "/api/v1/files/" + url.PathEscape(f.FileID) + "/download",
		})
	}
	return out
}

func (jw *jobWriter) jobs(js []domain.Job) []jobJSON {
	out := make([]jobJSON, 0, len(js))
	for _, j := range js {
		out = append(out, jw.job(j))
	}
	return out
}

// ownedJob reads the caller's job from the view, falling back to folding
// its history when the view does not have it (it lags, or another replica
// wrote it). Someone else's job is job_not_found, exactly like a missing one.
// requestedJob is the caller's job named by the {job_id} path parameter.
func (s *server) requestedJob(r *http.Request) (identity, domain.Job, error) {
	id, err := user(r)
	if err != nil {
		return id, domain.Job{}, err
	}
	j, err := s.ownedJob(r.Context(), id.UserID, chi.URLParam(r, "job_id"))
	return id, j, err
}

func (s *server) ownedJob(ctx context.Context, userID, jobID string) (domain.Job, error) {
	if !domain.ValidID("job", jobID) {
		return domain.Job{}, domain.ErrJobNotFound
	}
	j, err := s.deps.Jobs.Get(ctx, jobID)
	if err == nil {
		if !j.OwnedBy(userID) {
			return domain.Job{}, domain.ErrJobNotFound
		}
		return j, nil
	}
	if !errors.Is(err, domain.ErrJobNotFound) {
		s.log.Warn("job view failed; folding history instead", "job", jobID, "err", err)
	}
	evs, err := s.deps.History.Load(ctx, jobID)
	if err != nil {
		return domain.Job{}, fmt.Errorf("load history of job %s: %w", jobID, err)
	}
	j = domain.Fold(evs)
	if !j.OwnedBy(userID) {
		return domain.Job{}, domain.ErrJobNotFound
	}
	return j, nil
}

// waitForView gives the job view a bounded chance to catch up with a write,
// so that the client's next GET sees it. On timeout it just answers: the
// GET falls back to the history anyway.
func (s *server) waitForView(ctx context.Context, seq uint64) {
	if seq == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadYourWritesTimeout)
	defer cancel()
	if err := s.deps.Jobs.WaitFor(ctx, seq); err != nil {
		s.log.Debug("job view did not catch up in time", "seq", seq, "err", err)
	}
}

type createJobRequest struct {
	ProcessorType string         `json:"processor_type"`
	Params        map[string]any `json:"params"`
}

// preparedJob is a validated Create and the upload records it uses.
type preparedJob struct {
	cmd   domain.Create
	files []domain.File
}

// prepareJob validates a job request fully, without writing anything.
func (s *server) prepareJob(ctx context.Context, id identity, processorType string, params map[string]any) (preparedJob, error) {
	pt, err := domain.ParseProcessorType(processorType)
	if err != nil {
		return preparedJob{}, err
	}
	if err := checkParamTypes(pt, params); err != nil {
		return preparedJob{}, err
	}
	norm, fileIDs, err := domain.ValidateParams(pt, params)
	if err != nil {
		return preparedJob{}, err
	}
	if spec, _ := domain.LookupSpec(pt); !spec.Available {
		return preparedJob{}, domain.Validationf("processor_type %s is not available on this server yet", pt)
	}
	p := preparedJob{cmd: domain.Create{
		ID: domain.NewID("cmd"), JobID: domain.NewJobID(), UserID: id.UserID, ProcessorType: pt, Params: norm,
		Pool: domain.PoolStandard,
	}}
	var total int64
	for _, fid := range fileIDs {
		f, err := s.usableFile(ctx, id.UserID, fid)
		if err != nil {
			if errors.Is(err, domain.ErrFileNotFound) {
				return preparedJob{}, domain.ErrFileNotFound.WithMessage("file %s not found; upload it and confirm the upload first", short(fid))
			}
			return preparedJob{}, err
		}
		p.files = append(p.files, f)
		total += f.Size
		p.cmd.InputFiles = append(p.cmd.InputFiles, domain.InputFile{FileID: f.ID, FileName: f.Name, MimeType: f.MimeType, SizeBytes: f.Size})
	}
	if total >= s.cfg.LargeFileBytes {
		p.cmd.Pool = domain.PoolLarge
	}
	return p, nil
}

// short keeps client-supplied strings in error messages readable.
func short(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64] + "…")
	}
	return strconv.Quote(s)
}

// keepFiles clears the expiry of uploads a job is about to use, so that the
// retention sweeper leaves them alone while the job needs them. It returns
// an undo for when the job is not created after all.
func (s *server) keepFiles(ctx context.Context, files []domain.File) (func(), error) {
	var changed []domain.File
	undo := func() {
		for _, f := range changed {
			if err := s.deps.Files.Put(context.WithoutCancel(ctx), f); err != nil {
				s.log.Warn("restore upload expiry", "file", f.ID, "err", err)
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.ID] || f.ExpiresAt.IsZero() {
			continue
		}
		seen[f.ID] = true
		kept := f
		kept.ExpiresAt = time.Time{}
		if err := s.deps.Files.Put(ctx, kept); err != nil {
			undo()
			return nil, fmt.Errorf("keep input file %s: %w", f.ID, err)
		}
		changed = append(changed, f)
	}
	return undo, nil
}

func (s *server) createJob(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createJobRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.prepareJob(r.Context(), id, req.ProcessorType, req.Params)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	jobs, err := s.createJobs(r.Context(), []preparedJob{p})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, s.jobWriter(r).job(jobs[0]))
}

// createJobs writes validated jobs and waits for the view to show them.
func (s *server) createJobs(ctx context.Context, ps []preparedJob) ([]domain.Job, error) {
	var files []domain.File
	for _, p := range ps {
		files = append(files, p.files...)
	}
	undo, err := s.keepFiles(ctx, files)
	if err != nil {
		return nil, err
	}
	jobs := make([]domain.Job, 0, len(ps))
	var last uint64
	for _, p := range ps {
		j, err := s.deps.Commands.Execute(ctx, p.cmd.JobID, p.cmd)
		if err != nil {
			if len(jobs) == 0 {
				undo()
			}
			return nil, fmt.Errorf("create job %s: %w", p.cmd.JobID, err)
		}
		jobs = append(jobs, j)
		last = max(last, j.Version)
	}
	s.waitForView(ctx, last)
	return jobs, nil
}

type jobListResponse struct {
	Jobs       []jobJSON  `json:"jobs"`
	Pagination pagination `json:"pagination"`
}

type pagination struct {
	Page       int `json:"page"`
	Limit      int `json:"limit"`
	Total      int `json:"total"`
	TotalPages int `json:"totalPages"`
}

// parseListQuery reads the filters, sort and page of GET /jobs; every bad
// value is a 422 naming the parameter.
func parseListQuery(q url.Values, userID string) (domain.ListQuery, error) {
	lq := domain.ListQuery{UserID: userID, Descending: true, Page: 1, Limit: 20}
	var err error
	if v := q.Get("status"); v != "" {
		if lq.Status, err = domain.ParseStatus(v); err != nil {
			return lq, err
		}
	}
	if v := q.Get("processor_type"); v != "" {
		if lq.ProcessorType, err = domain.ParseProcessorType(v); err != nil {
			return lq, err
		}
	}
	if lq.SortBy, err = domain.ParseSortBy(q.Get("sort_by")); err != nil {
		return lq, err
	}
	switch v := strings.ToLower(q.Get("sort_order")); v {
	case "", "desc":
	case "asc":
		lq.Descending = false
	default:
		return lq, domain.Validationf("sort_order must be asc or desc; got %s", short(v))
	}
	if lq.Page, err = intParam(q, "page", 1, 1, math.MaxInt32); err != nil {
		return lq, err
	}
	if lq.Limit, err = intParam(q, "limit", 20, 1, 100); err != nil {
		return lq, err
	}
	return lq, nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil {
		return 0, domain.Validationf("%s must be an integer; got %s", name, short(v[0]))
	}
	if n < lo || n > hi {
		return 0, domain.Validationf("%s must be between %d and %d; got %d", name, lo, hi, n)
	}
	return n, nil
}

func (s *server) listJobs(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := parseListQuery(r.URL.Query(), id.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	jobs, total, err := s.deps.Jobs.List(r.Context(), q)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list jobs: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, jobListResponse{
		Jobs: s.jobWriter(r).jobs(jobs),
		Pagination: pagination{
			Page: q.Page, Limit: q.Limit, Total: total, TotalPages: (total + q.Limit - 1) / q.Limit,
		},
	})
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	_, j, err := s.requestedJob(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.jobWriter(r).job(j))
}

func (s *server) deleteJob(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cleanup := true
	if v := r.URL.Query().Get("cleanup_files"); v != "" {
		if cleanup, err = strconv.ParseBool(v); err != nil {
			s.writeError(w, r, domain.Validationf("cleanup_files must be true or false; got %s", short(v)))
			return
		}
	}
	ctx := r.Context()
	j, err := s.ownedJob(ctx, id.UserID, chi.URLParam(r, "job_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	deleted, err := s.deps.Commands.Execute(ctx, j.ID, domain.Delete{ID: domain.NewID("cmd"), CleanupFiles: cleanup})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("delete job %s: %w", j.ID, err))
		return
	}
	if cleanup {
		s.cleanupFiles(r, id.UserID, j)
	}
	s.waitForView(ctx, deleted.Version)
	w.WriteHeader(http.StatusNoContent)
}

// cleanupFiles deletes a deleted job's inputs and results. The job is gone
// either way, so failures are logged, not answered; the retention sweeper
// catches what is left. An input that another of the user's queued or
// processing jobs still reads is kept: deleting one job must not break
// another.
func (s *server) cleanupFiles(r *http.Request, userID string, j domain.Job) {
	inUse, known := s.inputsInUse(r.Context(), userID, j.ID)
	for _, in := range j.InputFiles {
		if !known || inUse[in.FileID] {
			continue
		}
		f, err := s.deps.Files.Get(r.Context(), in.FileID)
		if err != nil || f.UserID != userID {
			continue
		}
		s.discard(r, in.FileID)
	}
	for _, out := range j.ResultFiles {
		if f, err := s.deps.Files.Get(r.Context(), out.FileID); err == nil && f.UserID != userID {
			continue
		}
		s.discard(r, out.FileID)
	}
}

// maxActiveScan bounds how many of a user's unfinished jobs a delete looks
// through for shared inputs (10 pages of 100).
const maxActiveScan = 10

// inputsInUse returns the input files of the user's queued and processing
// jobs other than except. known is false when the view cannot say; the
// caller then keeps every input (the retention sweeper removes them later).
func (s *server) inputsInUse(ctx context.Context, userID, except string) (used map[string]bool, known bool) {
	used = map[string]bool{}
	for _, st := range []domain.Status{domain.StatusQueued, domain.StatusProcessing} {
		for page := 1; page <= maxActiveScan; page++ {
			jobs, total, err := s.deps.Jobs.List(ctx, domain.ListQuery{UserID: userID, Status: st, SortBy: "createdAt", Page: page, Limit: 100})
			if err != nil {
				s.log.Warn("list active jobs before cleanup; keeping the inputs", "user", userID, "err", err)
				return nil, false
			}
			for _, other := range jobs {
				if other.ID == except {
					continue
				}
				for _, in := range other.InputFiles {
					used[in.FileID] = true
				}
			}
			if page*100 >= total {
				break
			}
		}
	}
	return used, true
}
func (s *server) retryJob(w http.ResponseWriter, r *http.Request) {
	_, j, err := s.requestedJob(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j, err = s.deps.Commands.Execute(r.Context(), j.ID, domain.Retry{ID: domain.NewID("cmd")})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("retry job: %w", err))
		return
	}
	s.waitForView(r.Context(), j.Version)
	writeJSON(w, http.StatusOK, s.jobWriter(r).job(j))
}

func (s *server) jobStats(w http.ResponseWriter, r *http.Request) {
	_, j, err := s.requestedJob(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.deps.Jobs.Stats(r.Context(), j.ID)
	if err != nil {
		if !errors.Is(err, domain.ErrJobNotFound) {
			s.log.Warn("stats view failed; deriving from the job", "job", j.ID, "err", err)
		}
		st = domain.StatsOf(j)
	}
	writeJSON(w, http.StatusOK, st)
}

type progressRequest struct {
	Progress *int   `json:"progress"`
	Message  string `json:"message"`
}

// maxProgressMessage bounds what a worker may put in progressMessage.
const maxProgressMessage = 1000

// reportProgress is the internal endpoint for out-of-process workers; the
// worker token speaks for whoever holds the job, so no lease is checked.
func (s *server) reportProgress(w http.ResponseWriter, r *http.Request) {
	jobID := chi.URLParam(r, "job_id")
	var req progressRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.Progress == nil:
		s.writeError(w, r, domain.Validationf("progress is required"))
		return
	case *req.Progress < 0 || *req.Progress > 100:
		s.writeError(w, r, domain.Validationf("progress must be between 0 and 100, got %d", *req.Progress))
		return
	case len(req.Message) > maxProgressMessage:
		s.writeError(w, r, domain.Validationf("message must be at most %d bytes", maxProgressMessage))
		return
	case !domain.ValidID("job", jobID):
		s.writeError(w, r, domain.ErrJobNotFound)
		return
	}
	j, err := s.deps.Commands.Execute(r.Context(), jobID, domain.ReportProgress{ID: domain.NewID("cmd"), Progress: *req.Progress, Message: req.Message})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("report progress of job %s: %w", jobID, err))
		return
	}
	writeJSON(w, http.StatusOK, s.jobWriter(r).job(j))
}

// checkParamTypes reports a parameter of the wrong JSON type as 400
// invalid_json, as the contract asks; ValidateParams then judges values
// (ranges, enums, required) as 422. Unknown parameters are left to it.
func checkParamTypes(pt domain.ProcessorType, params map[string]any) error {
	spec, _ := domain.LookupSpec(pt)
	for _, p := range spec.Params {
		v, ok := params[p.Name]
		if !ok {
			continue
		}
		var want string
		switch p.Kind {
		case domain.ParamString, domain.ParamFileID, domain.ParamEnum:
			if _, ok := v.(string); !ok {
				want = "a string"
			}
		case domain.ParamBool:
			if _, ok := v.(bool); !ok {
				want = "true or false"
			}
		case domain.ParamInt, domain.ParamNumber:
			if _, ok := v.(float64); !ok {
				want = "a number"
			}
		case domain.ParamFileIDList:
			if _, ok := v.([]any); !ok {
				want = "an array of file ids"
			}
		}
		if want != "" {
			return domain.ErrInvalidJSON.WithMessage("params.%s must be %s", p.Name, want)
		}
	}
	return nil
}
