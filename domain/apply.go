package domain

// Apply folds one event into the job state. It never fails: events are facts,
// and an event the state machine would not have allowed is still applied the
// way it says (Verify reports such events for auditors).
func Apply(j Job, ev Event) Job {
	t := ev.Time.UTC()
	if ev.Sequence > j.Version {
		j.Version = ev.Sequence
	}
	j.UpdatedAt = t
	switch d := ev.Data.(type) {
	case Created:
		j.ID = ev.JobID
		j.UserID = d.UserID
		j.ProcessorType = d.ProcessorType
		j.Params = d.Params
		j.InputFiles = d.InputFiles
		j.Pool = d.Pool
		j.Status = StatusQueued
		j.CreatedAt = t
	case Started:
		j.Status = StatusProcessing
		j.Lease = d.Lease
		j.WorkerID = d.WorkerID
		j.Progress = 0
		j.ProgressMessage = ""
		j.StartedAt = &t
	case Progressed:
		j.Progress = d.Progress
		j.ProgressMessage = d.Message
	case Completed:
		j.Status = StatusCompleted
		j.Progress = 100
		j.ResultFiles = d.ResultFiles
		j.ProcessingSeconds = d.ProcessingTimeSeconds
		j.CompletedAt = &t
		j.Error = nil
	case Failed:
		j.Status = StatusFailed
		e := d.Error
		j.Error = &e
		j.ProcessingSeconds = d.ProcessingTimeSeconds
		j.CompletedAt = &t
	case Retried:
		j.Status = StatusQueued
		j.RetryCount = d.RetryCount
		j.Error = nil
		j.Progress = 0
		j.ProgressMessage = ""
		j.StartedAt = nil
		j.CompletedAt = nil
		j.ResultFiles = nil
		j.Lease = ""
	case Deleted:
		j.Deleted = true
	}
	return j
}

// Fold applies events in order to an empty job.
func Fold(events []Event) Job {
	var j Job
	for _, ev := range events {
		j = Apply(j, ev)
	}
	return j
}

// Violation is an event in a history that the state machine would not have
// produced from the state before it.
type Violation struct {
	Index int
	Event Event
	Err   error
}

// Verify replays a history through Decide and reports every event whose
// command the state machine would have refused, for auditors.
func Verify(events []Event) []Violation {
	var out []Violation
	var j Job
	for i, ev := range events {
		if cmd := commandFor(j, ev); cmd != nil {
			if _, err := Decide(j, cmd, ev.Time); err != nil {
				out = append(out, Violation{Index: i, Event: ev, Err: err})
			}
		}
		j = Apply(j, ev)
	}
	return out
}

// commandFor reconstructs the command that would have produced ev.
func commandFor(j Job, ev Event) Command {
	switch d := ev.Data.(type) {
	case Created:
		return Create{ID: ev.ID, JobID: ev.JobID, UserID: d.UserID, ProcessorType: d.ProcessorType, Params: d.Params, InputFiles: d.InputFiles, Pool: d.Pool}
	case Started:
		return Start{ID: ev.ID, Attempt: d.Attempt, WorkerID: d.WorkerID, Lease: d.Lease}
	case Progressed:
		return ReportProgress{ID: ev.ID, Progress: d.Progress, Message: d.Message}
	case Completed:
		return Complete{ID: ev.ID, Lease: d.Lease, ResultFiles: d.ResultFiles}
	case Failed:
		return Fail{ID: ev.ID, Lease: d.Lease, Error: d.Error}
	case Retried:
		return Retry{ID: ev.ID}
	case Deleted:
		return Delete{ID: ev.ID, CleanupFiles: d.CleanupFiles}
	}
	return nil
}
