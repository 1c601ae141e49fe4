package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

func TestJobEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	id := c.createJob()
	e.fail(id)
	c.do("POST", "/api/v1/jobs/"+id+"/retry", nil).status(http.StatusOK)

	var out struct {
		JobID  string
		Events []map[string]any
	}
	c.do("GET", "/api/v1/jobs/"+id+"/events", nil).status(http.StatusOK).decode(&out)
	require.Equal(t, id, out.JobID)
	var types []string
	for _, ev := range out.Events {
		types = append(types, ev["type"].(string))
		require.Equal(t, id, ev["subject"])
	}
	require.Equal(t, []string{
		"com.convilyn.turbolane.job.created", "com.convilyn.turbolane.job.started",
		"com.convilyn.turbolane.job.failed", "com.convilyn.turbolane.job.retried",
	}, types, "oldest first")

	e.anon().do("GET", "/api/v1/jobs/"+id+"/events", nil).fail(404, "job_not_found")
	c.do("GET", "/api/v1/jobs/"+domain.NewJobID()+"/events", nil).fail(404, "job_not_found")
	e.bearer(workerToken).do("GET", "/api/v1/jobs/"+id+"/events", nil).fail(403, "forbidden")

	// After deletion the owner sees nothing, but an auditor with the admin
	// token still reads the whole history, deletion included.
	c.do("DELETE", "/api/v1/jobs/"+id, nil).status(http.StatusNoContent)
	c.do("GET", "/api/v1/jobs/"+id+"/events", nil).fail(404, "job_not_found")
	e.bearer(adminToken).do("GET", "/api/v1/jobs/"+id+"/events", nil).status(http.StatusOK).decode(&out)
	require.Len(t, out.Events, 5)
	require.Equal(t, "com.convilyn.turbolane.job.deleted", out.Events[4]["type"])
	e.bearer(adminToken).do("GET", "/api/v1/jobs/"+domain.NewJobID()+"/events", nil).fail(404, "job_not_found")
}
