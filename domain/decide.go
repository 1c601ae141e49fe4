package domain

import (
	"fmt"
	"time"
)

// Decide returns the events that cmd produces on a job in state j at time
// now, or the domain error that forbids it. It is pure.
func Decide(j Job, cmd Command, now time.Time) ([]Event, error) {
	data, err := decide(j, cmd, now)
	if err != nil {
		return nil, err
	}
	jobID := j.ID
	if c, ok := cmd.(Create); ok {
		jobID = c.JobID
	}
	return []Event{{
		ID:            cmd.CommandID(),
		JobID:         jobID,
		Type:          data.EventType(),
		Time:          now.UTC(),
		SchemaVersion: CurrentSchemaVersion,
		Data:          data,
	}}, nil
}

func decide(j Job, cmd Command, now time.Time) (EventData, error) {
	if c, ok := cmd.(Create); ok {
		if j.ID != "" {
			return nil, ErrJobExists
		}
		if c.JobID == "" || c.UserID == "" || c.ProcessorType == "" {
			return nil, Validationf("create needs a job id, a user and a processor type")
		}
		pool := c.Pool
		if pool == "" {
			pool = PoolStandard
		}
		return Created{UserID: c.UserID, ProcessorType: c.ProcessorType, Params: c.Params, InputFiles: c.InputFiles, Pool: pool}, nil
	}
	if !j.Exists() {
		return nil, ErrJobNotFound
	}
	switch c := cmd.(type) {
	case Start:
		if c.Attempt != j.RetryCount {
			return nil, ErrStaleAttempt
		}
		switch j.Status {
		case StatusQueued:
			return Started{Attempt: c.Attempt, WorkerID: c.WorkerID, Lease: c.Lease}, nil
		case StatusProcessing:
			if c.Lease == j.Lease {
				return nil, ErrJobNotQueued // the same run asked twice
			}
			// The work item came back because the holder stopped heart-beating.
			return Started{Attempt: c.Attempt, WorkerID: c.WorkerID, Lease: c.Lease, Takeover: true}, nil
		case StatusCompleted:
			return nil, ErrAlreadyCompleted
		default:
			return nil, ErrJobNotQueued
		}
	case ReportProgress:
		if j.Status != StatusProcessing {
			return nil, ErrJobNotProcessing
		}
		if c.Lease != "" && c.Lease != j.Lease {
			return nil, ErrLeaseLost
		}
		if c.Progress < 0 || c.Progress > 100 {
			return nil, Validationf("progress must be between 0 and 100, got %d", c.Progress)
		}
		return Progressed{Progress: c.Progress, Message: c.Message}, nil
	case Complete:
		switch {
		case j.Status == StatusCompleted:
			return nil, ErrAlreadyCompleted
		case j.Status != StatusProcessing:
			return nil, ErrJobNotProcessing
		case c.Lease != j.Lease:
			return nil, ErrLeaseLost
		}
		return Completed{Lease: c.Lease, ResultFiles: c.ResultFiles, ProcessingTimeSeconds: since(j.StartedAt, now)}, nil
	case Fail:
		if c.Error.Code == "" {
			return nil, Validationf("a failure needs an error code")
		}
		switch {
		case j.Status == StatusCompleted:
			return nil, ErrAlreadyCompleted
		case j.Status == StatusFailed:
			return nil, ErrJobNotProcessing
		case c.Lease == "" && (j.Status == StatusQueued || j.Status == StatusProcessing):
		case j.Status != StatusProcessing:
			return nil, ErrJobNotProcessing
		case c.Lease != j.Lease:
			return nil, ErrLeaseLost
		}
		return Failed{Lease: c.Lease, Error: c.Error, ProcessingTimeSeconds: since(j.StartedAt, now)}, nil
	case Retry:
		if j.Status != StatusFailed {
			return nil, ErrJobNotFailed
		}
		return Retried{RetryCount: j.RetryCount + 1}, nil
	case Delete:
		return Deleted{CleanupFiles: c.CleanupFiles}, nil
	}
	return nil, fmt.Errorf("decide: unknown command %T", cmd)
}

func since(t *time.Time, now time.Time) float64 {
	if t == nil {
		return 0
	}
	d := now.Sub(*t).Seconds()
	if d < 0 {
		return 0
	}
	return d
}
