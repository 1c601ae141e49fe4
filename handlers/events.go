package handlers

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/convilyn/turbolane/domain"
)

type eventsResponse struct {
	JobID  string `json:"jobId"`
	Events []any  `json:"events"`
}

// jobEvents returns a job's full history as CloudEvents, oldest first. A
// user sees the history of their own live jobs; a request carrying the admin
// token (auditors) may read any job's history, including deleted jobs,
// because the history outlives every view.
func (s *server) jobEvents(w http.ResponseWriter, r *http.Request) {
	who := identityFrom(r.Context())
	if !who.Admin && who.UserID == "" {
		s.writeError(w, r, errNotUser)
		return
	}
	jobID := chi.URLParam(r, "job_id")
	if !domain.ValidID("job", jobID) {
		s.writeError(w, r, domain.ErrJobNotFound)
		return
	}
	evs, err := s.deps.History.Load(r.Context(), jobID)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("load history of job %s: %w", jobID, err))
		return
	}
	j := domain.Fold(evs)
	if len(evs) == 0 || (!who.Admin && !j.OwnedBy(who.UserID)) {
		s.writeError(w, r, domain.ErrJobNotFound)
		return
	}
	out := eventsResponse{JobID: jobID, Events: make([]any, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, s.deps.EncodeEvent(ev))
	}
	writeJSON(w, http.StatusOK, out)
}
