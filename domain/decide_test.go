package domain

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// history builds a job state by running commands through Decide and Apply,
// failing the test if any is refused.
func history(t *testing.T, cmds ...Command) Job {
	t.Helper()
	var j Job
	for i, c := range cmds {
		evs, err := Decide(j, c, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatalf("setup command %d (%T): %v", i, c, err)
		}
		for _, ev := range evs {
			ev.Sequence = j.Version + 1
			j = Apply(j, ev)
		}
	}
	return j
}

func create() Create {
	return Create{ID: "c1", JobID: "job_1", UserID: "u1", ProcessorType: ImageConversion,
		Params: map[string]any{"file_id": "file_1", "output_format": "webp"}, InputFiles: []InputFile{{FileID: "file_1", SizeBytes: 10}}}
}

func TestDecideEveryCommandInEveryState(t *testing.T) {
	t.Parallel()
	start := Start{ID: "s1", Attempt: 0, WorkerID: "w1", Lease: "L1"}
	states := map[string][]Command{
		"new":        nil,
		"queued":     {create()},
		"processing": {create(), start},
		"completed":  {create(), start, Complete{ID: "k1", Lease: "L1"}},
		"failed":     {create(), start, Fail{ID: "f1", Lease: "L1", Error: JobError{Code: CodeCorruptInput, Message: "bad"}}},
		"retried":    {create(), start, Fail{ID: "f1", Lease: "L1", Error: JobError{Code: CodeTimeout}}, Retry{ID: "r1"}},
		"deleted":    {create(), Delete{ID: "d1"}},
	}
	commands := map[string]Command{
		"create":         create(),
		"start":          Start{ID: "x", Attempt: 0, WorkerID: "w2", Lease: "L2"},
		"start-attempt1": Start{ID: "x", Attempt: 1, WorkerID: "w2", Lease: "L2"},
		"progress":       ReportProgress{ID: "x", Progress: 50, Message: "half"},
		"progress-lease": ReportProgress{ID: "x", Lease: "L1", Progress: 50},
		"progress-stale": ReportProgress{ID: "x", Lease: "L9", Progress: 50},
		"complete":       Complete{ID: "x", Lease: "L1"},
		"complete-stale": Complete{ID: "x", Lease: "L9"},
		"fail":           Fail{ID: "x", Lease: "L1", Error: JobError{Code: CodeProcessorError}},
		"fail-system":    Fail{ID: "x", Error: JobError{Code: CodeWorkerLost}},
		"fail-stale":     Fail{ID: "x", Lease: "L9", Error: JobError{Code: CodeProcessorError}},
		"retry":          Retry{ID: "x"},
		"delete":         Delete{ID: "x", CleanupFiles: true},
	}
	// want[state][command] is the event type produced, or the error.
	type outcome struct {
		ev  EventType
		err error
	}
	ok := func(e EventType) outcome { return outcome{ev: e} }
	no := func(err error) outcome { return outcome{err: err} }
	want := map[string]map[string]outcome{
		"new": {
			"create": ok(EventCreated), "start": no(ErrJobNotFound), "start-attempt1": no(ErrJobNotFound), "progress": no(ErrJobNotFound),
			"progress-lease": no(ErrJobNotFound), "progress-stale": no(ErrJobNotFound), "complete": no(ErrJobNotFound), "complete-stale": no(ErrJobNotFound),
			"fail": no(ErrJobNotFound), "fail-system": no(ErrJobNotFound), "fail-stale": no(ErrJobNotFound), "retry": no(ErrJobNotFound), "delete": no(ErrJobNotFound),
		},
		"queued": {
			"create": no(ErrJobExists), "start": ok(EventStarted), "start-attempt1": no(ErrStaleAttempt), "progress": no(ErrJobNotProcessing),
			"progress-lease": no(ErrJobNotProcessing), "progress-stale": no(ErrJobNotProcessing), "complete": no(ErrJobNotProcessing), "complete-stale": no(ErrJobNotProcessing),
			"fail": no(ErrJobNotProcessing), "fail-system": ok(EventFailed), "fail-stale": no(ErrJobNotProcessing), "retry": no(ErrJobNotFailed), "delete": ok(EventDeleted),
		},
		"processing": {
			"create": no(ErrJobExists), "start": ok(EventStarted), "start-attempt1": no(ErrStaleAttempt), "progress": ok(EventProgressed),
			"progress-lease": ok(EventProgressed), "progress-stale": no(ErrLeaseLost), "complete": ok(EventCompleted), "complete-stale": no(ErrLeaseLost),
			"fail": ok(EventFailed), "fail-system": ok(EventFailed), "fail-stale": no(ErrLeaseLost), "retry": no(ErrJobNotFailed), "delete": ok(EventDeleted),
		},
		"completed": {
			"create": no(ErrJobExists), "start": no(ErrAlreadyCompleted), "start-attempt1": no(ErrStaleAttempt), "progress": no(ErrJobNotProcessing),
			"progress-lease": no(ErrJobNotProcessing), "progress-stale": no(ErrJobNotProcessing), "complete": no(ErrAlreadyCompleted), "complete-stale": no(ErrAlreadyCompleted),
			"fail": no(ErrAlreadyCompleted), "fail-system": no(ErrAlreadyCompleted), "fail-stale": no(ErrAlreadyCompleted), "retry": no(ErrJobNotFailed), "delete": ok(EventDeleted),
		},
		"failed": {
			"create": no(ErrJobExists), "start": no(ErrJobNotQueued), "start-attempt1": no(ErrStaleAttempt), "progress": no(ErrJobNotProcessing),
			"progress-lease": no(ErrJobNotProcessing), "progress-stale": no(ErrJobNotProcessing), "complete": no(ErrJobNotProcessing), "complete-stale": no(ErrJobNotProcessing),
			"fail": no(ErrJobNotProcessing), "fail-system": no(ErrJobNotProcessing), "fail-stale": no(ErrJobNotProcessing), "retry": ok(EventRetried), "delete": ok(EventDeleted),
		},
		"retried": {
			"create": no(ErrJobExists), "start": no(ErrStaleAttempt), "start-attempt1": ok(EventStarted), "progress": no(ErrJobNotProcessing),
			"progress-lease": no(ErrJobNotProcessing), "progress-stale": no(ErrJobNotProcessing), "complete": no(ErrJobNotProcessing), "complete-stale": no(ErrJobNotProcessing),
			"fail": no(ErrJobNotProcessing), "fail-system": ok(EventFailed), "fail-stale": no(ErrJobNotProcessing), "retry": no(ErrJobNotFailed), "delete": ok(EventDeleted),
		},
		"deleted": {
			"create": no(ErrJobExists), "start": no(ErrJobNotFound), "start-attempt1": no(ErrJobNotFound), "progress": no(ErrJobNotFound),
			"progress-lease": no(ErrJobNotFound), "progress-stale": no(ErrJobNotFound), "complete": no(ErrJobNotFound), "complete-stale": no(ErrJobNotFound),
			"fail": no(ErrJobNotFound), "fail-system": no(ErrJobNotFound), "fail-stale": no(ErrJobNotFound), "retry": no(ErrJobNotFound), "delete": no(ErrJobNotFound),
		},
	}
	for state, setup := range states {
		j := history(t, setup...)
		for name, cmd := range commands {
			w, okw := want[state][name]
			if !okw {
				t.Fatalf("no expectation for %s in %s", name, state)
			}
			t.Run(state+"/"+name, func(t *testing.T) {
				evs, err := Decide(j, cmd, t0.Add(time.Hour))
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("want error %v, got %v (events %v)", w.err, err, evs)
					}
					return
				}
				if err != nil {
					t.Fatalf("want %s event, got error %v", w.ev, err)
				}
				if len(evs) != 1 || evs[0].Type != w.ev {
					t.Fatalf("want one %s event, got %+v", w.ev, evs)
				}
				if evs[0].ID != cmd.CommandID() || evs[0].SchemaVersion != CurrentSchemaVersion {
					t.Fatalf("event id/version: %+v", evs[0])
				}
			})
		}
	}
}

func TestApplyLifecycle(t *testing.T) {
	t.Parallel()
	j := history(t, create())
	if j.Status != StatusQueued || j.ID != "job_1" || j.UserID != "u1" || j.Pool != PoolStandard {
		t.Fatalf("after create: %+v", j)
	}
	j = history(t, create(), Start{ID: "s", Lease: "L"}, ReportProgress{ID: "p", Progress: 40, Message: "decoding"})
	if j.Status != StatusProcessing || j.Progress != 40 || j.ProgressMessage != "decoding" || j.StartedAt == nil {
		t.Fatalf("after progress: %+v", j)
	}
	j = history(t, create(), Start{ID: "s", Lease: "L"}, Complete{ID: "k", Lease: "L", ResultFiles: []ResultFile{{FileID: "file_2", SizeBytes: 5}}})
	if j.Status != StatusCompleted || j.Progress != 100 || len(j.ResultFiles) != 1 || j.CompletedAt == nil || j.ProcessingSeconds != 1 {
		t.Fatalf("after complete: %+v", j)
	}
	s := StatsOf(j)
	if s.InputFilesCount != 1 || s.OutputFilesCount != 1 || s.TotalInputSizeBytes != 10 || s.TotalOutputSizeBytes != 5 || *s.ProcessingTimeSeconds != 1 {
		t.Fatalf("stats: %+v", s)
	}
	j = history(t, create(), Start{ID: "s", Lease: "L"}, Fail{ID: "f", Lease: "L", Error: JobError{Code: CodeTimeout, Message: "slow"}}, Retry{ID: "r"})
	if j.Status != StatusQueued || j.RetryCount != 1 || j.Error != nil || j.Lease != "" || j.StartedAt != nil {
		t.Fatalf("after retry: %+v", j)
	}
}

func TestTakeoverLeavesOneCompletion(t *testing.T) {
	t.Parallel()
	// Worker A starts, stops heart-beating, worker B takes over and completes;
	// A's late completion must be refused.
	j := history(t, create(), Start{ID: "a", Lease: "A"}, Start{ID: "b", Lease: "B"})
	if j.Lease != "B" {
		t.Fatalf("lease after takeover: %q", j.Lease)
	}
	if _, err := Decide(j, Complete{ID: "ka", Lease: "A"}, t0); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale completion: %v", err)
	}
	j = history(t, create(), Start{ID: "a", Lease: "A"}, Start{ID: "b", Lease: "B"}, Complete{ID: "kb", Lease: "B"})
	if _, err := Decide(j, Complete{ID: "kb2", Lease: "B"}, t0); !errors.Is(err, ErrAlreadyCompleted) {
		t.Fatalf("second completion: %v", err)
	}
}

func TestVerifyFindsForbiddenEvents(t *testing.T) {
	t.Parallel()
	evs, _ := Decide(Job{}, create(), t0)
	j := Fold(evs)
	bad := Event{ID: "bad", JobID: j.ID, Type: EventCompleted, Time: t0, SchemaVersion: 1, Data: Completed{Lease: "nobody"}}
	v := Verify(append(evs, bad))
	if len(v) != 1 || v[0].Index != 1 || !errors.Is(v[0].Err, ErrJobNotProcessing) {
		t.Fatalf("violations: %+v", v)
	}
	if len(Verify(evs)) != 0 {
		t.Fatal("a clean history has no violations")
	}
}

func TestDecodeEventDataRoundTrip(t *testing.T) {
	t.Parallel()
	if _, err := DecodeEventData(EventCreated, 99, []byte(`{}`)); err == nil {
		t.Fatal("unknown schema version must fail")
	}
	if _, err := DecodeEventData("exploded", 1, []byte(`{}`)); err == nil {
		t.Fatal("unknown type must fail")
	}
	d, err := DecodeEventData(EventFailed, 1, []byte(`{"error":{"code":"timeout","message":"m"}}`))
	if err != nil || d.(Failed).Error.Code != CodeTimeout {
		t.Fatalf("decode failed: %v %+v", err, d)
	}
}
