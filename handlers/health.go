package handlers

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// readyTimeout bounds each readiness check, so a hung dependency makes the
// probe fail instead of hang.
const readyTimeout = 2 * time.Second

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readyResponse struct {
	Status string            `json:"status,omitempty"`
	Detail string            `json:"detail,omitempty"`
	Code   string            `json:"code,omitempty"`
	Checks map[string]string `json:"checks"`
}

// readyz runs every injected check; any failure makes the whole probe 503.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	var failed []string
	names := slices.Sorted(maps.Keys(s.deps.Checks))
	for _, name := range names {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		err := s.deps.Checks[name](ctx)
		cancel()
		if err != nil {
			checks[name] = err.Error()
			failed = append(failed, name+": "+err.Error())
			s.log.Warn("readiness check failed", "check", name, "err", err)
			continue
		}
		checks[name] = "ok"
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyResponse{
			Detail: strings.Join(failed, "; "), Code: "not_ready", Checks: checks,
		})
		return
	}
	writeJSON(w, http.StatusOK, readyResponse{Status: "ready", Checks: checks})
}

// openAPI serves the spec the binary was built with.
func (s *server) openAPI(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.OpenAPI) == 0 {
		s.writeError(w, r, domain.ErrNotFound.WithMessage("this server was built without its OpenAPI spec"))
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.cfg.OpenAPI)))
	_, _ = w.Write(s.cfg.OpenAPI)
}
