package handlers

import (
	"errors"
	"maps"
	"net/http"

	"github.com/convilyn/turbolane/domain"
)

// maxBatchItems is the contract's batch size limit.
const maxBatchItems = 20

type batchRequest struct {
	ProcessorType string      `json:"processorType"`
	OutputFormat  string      `json:"outputFormat"`
	Items         []batchItem `json:"items"`
}

type batchItem struct {
	FileID string         `json:"fileId"`
	Params map[string]any `json:"params"`
}

type batchResponse struct {
	Jobs []jobJSON `json:"jobs"`
}

// params builds one item's job params: the item's own params, its fileId as
// file_id, and the batch's outputFormat unless the item names its own.
func (it batchItem) params(outputFormat string) map[string]any {
	p := make(map[string]any, len(it.Params)+2)
	maps.Copy(p, it.Params)
	p["file_id"] = it.FileID
	if _, ok := p["output_format"]; !ok && outputFormat != "" {
		p["output_format"] = outputFormat
	}
	return p
}

// createBatch creates one job per item after validating every item, so a
// bad item creates nothing.
func (s *server) createBatch(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req batchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if n := len(req.Items); n < 1 || n > maxBatchItems {
		s.writeError(w, r, domain.Validationf("items must hold between 1 and %d entries, got %d", maxBatchItems, n))
		return
	}
	if req.ProcessorType == "" {
		s.writeError(w, r, domain.Validationf("processorType is required"))
		return
	}
	prepared := make([]preparedJob, 0, len(req.Items))
	for i, it := range req.Items {
		if it.FileID == "" {
			s.writeError(w, r, domain.Validationf("items[%d].fileId is required", i))
			return
		}
		p, err := s.prepareJob(r.Context(), id, req.ProcessorType, it.params(req.OutputFormat))
		if err != nil {
			s.writeError(w, r, itemError(i, err))
			return
		}
		prepared = append(prepared, p)
	}
	jobs, err := s.createJobs(r.Context(), prepared)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, batchResponse{Jobs: s.jobWriter(r).jobs(jobs)})
}

// itemError says which item a domain error is about, keeping its code.
func itemError(i int, err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.WithMessage("items[%d]: %s", i, de.Message)
	}
	return err
}
