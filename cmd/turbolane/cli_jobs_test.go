package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// cliFixture is a server with an API key user who has one completed and one
// failed job, made through the API.
type cliFixture struct {
	m                 *Main
	key               string
	c                 *client
	completed, failed string
}

func newCLIFixture(t *testing.T) cliFixture {
	t.Helper()
	m := startServe(t)
	res := newClient(t, m.URL, testAdminToken).postJSON("/api/v1/admin/api-keys", map[string]any{"userId": "auditor-test", "plan": "free"})
	mustStatus(t, res, http.StatusCreated, "")
	var key struct{ APIKey string }
	res.json(t, &key)
	c := newClient(t, m.URL, key.APIKey)
	good := c.createJob("image_conversion", map[string]any{"file_id": c.upload("good.jpg", testJPEG(t, 40, 30)), "output_format": "png"})
	bad := c.createJob("image_conversion", map[string]any{"file_id": c.upload("bad.jpg", []byte("not a jpeg")), "output_format": "png"})
	if j := c.waitJob(good.JobID); j.Status != "completed" {
		t.Fatalf("good job: %+v", j)
	}
	if j := c.waitJob(bad.JobID); j.Status != "failed" {
		t.Fatalf("bad job: %+v", j)
	}
	return cliFixture{m: m, key: key.APIKey, c: c, completed: good.JobID, failed: bad.JobID}
}

func (f cliFixture) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, append(args, "--server", f.m.URL, "--api-key", f.key)...)
}

func TestCLIJobsAndEvents(t *testing.T) {
	f := newCLIFixture(t)

	t.Run("jobs list", func(t *testing.T) {
		out := f.cli(t, "jobs", "list").mustSucceed(t).Stdout
		for _, want := range []string{"JOB", f.completed, f.failed, "unsupported_format", "good.png", "2 jobs in all"} {
			if !strings.Contains(out, want) {
				t.Errorf("list lacks %q:\n%s", want, out)
			}
		}
		out = f.cli(t, "jobs", "list", "--status", "failed", "--type", "image_conversion").mustSucceed(t).Stdout
		if !strings.Contains(out, f.failed) || strings.Contains(out, f.completed) {
			t.Errorf("--status failed:\n%s", out)
		}
		var page cliJobList
		raw := f.cli(t, "jobs", "list", "--limit", "1", "--page", "2", "--json").mustSucceed(t).Stdout
		if err := json.Unmarshal([]byte(raw), &page); err != nil || len(page.Jobs) != 1 || page.Pagination.Total != 2 || page.Pagination.Page != 2 {
			t.Errorf("--json page 2: %v %s", err, raw)
		}
		f.cli(t, "jobs", "list", "--limit", "500").mustFail(t, "422 validation_error")
	})

	t.Run("jobs get", func(t *testing.T) {
		out := f.cli(t, "jobs", "get", f.completed).mustSucceed(t).Stdout
		for _, want := range []string{"status:", "completed", "image_conversion", "good.png", "image/png", `"output_format":"png"`} {
			if !strings.Contains(out, want) {
				t.Errorf("get lacks %q:\n%s", want, out)
			}
		}
		out = f.cli(t, "jobs", "get", f.failed).mustSucceed(t).Stdout
		if !strings.Contains(out, "error:") || !strings.Contains(out, "unsupported_format: ") {
			t.Errorf("get of the failed job:\n%s", out)
		}
		var j cliJob
		if err := json.Unmarshal([]byte(f.cli(t, "jobs", "get", f.completed, "--json").mustSucceed(t).Stdout), &j); err != nil || j.JobID != f.completed {
			t.Errorf("--json: %v %+v", err, j)
		}
		f.cli(t, "jobs", "get", "job_doesnotexist0000000000000").mustFail(t, "404 job_not_found")
		f.cli(t, "jobs", "get").mustFail(t, "exactly one job ID")
	})

	t.Run("events timeline and verify", func(t *testing.T) {
		out := f.cli(t, "events", f.completed, "--verify").mustSucceed(t).Stdout
		for _, want := range []string{"created", "started", "completed", "worker ", "user auditor-test", "good.jpg", "good.png", "verified: all"} {
			if !strings.Contains(out, want) {
				t.Errorf("timeline lacks %q:\n%s", want, out)
			}
		}
		out = f.cli(t, "events", f.failed).mustSucceed(t).Stdout
		if !strings.Contains(out, "failed") || !strings.Contains(out, "error unsupported_format: ") {
			t.Errorf("timeline of the failed job:\n%s", out)
		}
		// An auditor reads any job's history with the admin token.
		out = runCLI(t, "events", f.completed, "--server", f.m.URL, "--api-key", testAdminToken, "--verify").mustSucceed(t).Stdout
		if !strings.Contains(out, "verified") {
			t.Errorf("admin view:\n%s", out)
		}
		runCLI(t, "events", f.completed, "--server", f.m.URL).mustFail(t, "404 job_not_found")
	})

	t.Run("verify finds a doctored history", func(t *testing.T) {
		res := f.c.get("/api/v1/jobs/" + f.completed + "/events")
		mustStatus(t, res, http.StatusOK, "")
		var h cliEvents
		res.json(t, &h)
		events, err := decodeHistory(h.Events)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyHistory(new(strings.Builder), events); err != nil {
			t.Fatalf("the real history must verify: %v", err)
		}
		// Forge what the state machine forbids: progress after completion,
		// then a second completion by a worker that holds no lease.
		last := events[len(events)-1].Time
		forged := []domain.Event{
			{ID: "cmd_forged1", JobID: f.completed, Type: domain.EventProgressed, Time: last.Add(time.Second), Data: domain.Progressed{Progress: 50}},
			{ID: "cmd_forged2", JobID: f.completed, Type: domain.EventCompleted, Time: last.Add(2 * time.Second), Data: domain.Completed{Lease: "nobody"}},
		}
		raws := append([]json.RawMessage(nil), h.Events...)
		for _, ev := range forged {
			b, err := json.Marshal(eventstore.CloudEventOf(ev))
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, b)
		}
		doctored, err := decodeHistory(raws)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		err = verifyHistory(&out, doctored)
		if !errors.Is(err, ErrForbiddenEvents) || !strings.Contains(err.Error(), "2 of ") {
			t.Fatalf("doctored history: %v\n%s", err, out.String())
		}
		for _, want := range []string{"FORBIDDEN", "cmd_forged1", "cmd_forged2", "progressed", "completed"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Count(out.String(), "FORBIDDEN") != 2 {
			t.Errorf("want exactly the two forged events reported:\n%s", out.String())
		}
	})

	t.Run("jobs retry", func(t *testing.T) {
		out := f.cli(t, "jobs", "retry", f.failed).mustSucceed(t).Stdout
		if !strings.Contains(out, "queued again (retry 1)") {
			t.Errorf("retry: %s", out)
		}
		f.cli(t, "jobs", "retry", f.completed).mustFail(t, "409 job_not_failed")
		f.c.waitJob(f.failed)
	})

	t.Run("jobs delete", func(t *testing.T) {
		out := f.cli(t, "jobs", "delete", f.failed, "--keep-files").mustSucceed(t).Stdout
		if !strings.Contains(out, "deleted (files kept)") {
			t.Errorf("delete --keep-files: %s", out)
		}
		out = f.cli(t, "jobs", "delete", f.completed).mustSucceed(t).Stdout
		if !strings.Contains(out, "deleted and its files") {
			t.Errorf("delete: %s", out)
		}
		f.cli(t, "jobs", "get", f.completed).mustFail(t, "404 job_not_found")
		// The history outlives the job for auditors, ending in deleted.
		out = runCLI(t, "events", f.completed, "--server", f.m.URL, "--api-key", testAdminToken, "--verify").mustSucceed(t).Stdout
		if !strings.Contains(out, "deleted") || !strings.Contains(out, "files deleted") {
			t.Errorf("history after delete:\n%s", out)
		}
	})

	t.Run("bad usage", func(t *testing.T) {
		runCLI(t, "jobs").mustFail(t, "missing subcommand")
		f.cli(t, "jobs", "frobnicate").mustFail(t, "unknown subcommand")
		runCLI(t, "jobs", "list", "--server", f.m.URL, "--api-key", "wrong").mustFail(t, "401")
	})
}
