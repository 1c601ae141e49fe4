package handlers

import (
	"net/http"

	"github.com/convilyn/turbolane/domain"
)

type processorsResponse struct {
	Processors []domain.Spec `json:"processors"`
	Limits     limitsJSON    `json:"limits"`
}

type limitsJSON struct {
	// Plans maps each plan to its largest file in bytes.
	Plans            map[domain.Plan]int64 `json:"plans"`
	LargeFileBytes   int64                 `json:"largeFileBytes"`
	MaxBatchItems    int                   `json:"maxBatchItems"`
	MaxDownloadJobs  int                   `json:"maxDownloadJobs"`
	MaxJSONBodyBytes int64                 `json:"maxJsonBodyBytes"`
	UploadRetention  int64                 `json:"uploadRetentionSeconds"`
}

// processors is the catalog: every processor (with whether this server can
// run it yet) and the limits that apply to requests.
func (s *server) processors(w http.ResponseWriter, r *http.Request) {
	plans := make(map[domain.Plan]int64, len(s.cfg.PlanLimits))
	for p, n := range s.cfg.PlanLimits {
		plans[p] = n
	}
	writeJSON(w, http.StatusOK, processorsResponse{
		Processors: s.catalog(),
		Limits: limitsJSON{
			Plans: plans, LargeFileBytes: s.cfg.LargeFileBytes, MaxBatchItems: maxBatchItems,
			MaxDownloadJobs: maxDownloadJobs, MaxJSONBodyBytes: maxJSONBody,
			UploadRetention: int64(s.cfg.UploadRetention.Seconds()),
		},
	})
}

// catalog returns the processor specs with the choices this deployment
// knows of (e.g. the installed OCR languages) filled into their params.
func (s *server) catalog() []domain.Spec {
	specs := domain.Specs()
	for i, spec := range specs {
		choices := s.cfg.ParamChoices[spec.Type]
		if len(choices) == 0 {
			continue
		}
		params := make([]domain.ParamSpec, len(spec.Params))
		copy(params, spec.Params)
		for j, p := range params {
			if c, ok := choices[p.Name]; ok && len(p.Enum) == 0 {
				params[j].Enum = c
			}
		}
		specs[i].Params = params
	}
	return specs
}
