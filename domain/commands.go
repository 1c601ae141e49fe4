package domain

// Command is an intention to change a job. ID identifies the command; the
// event it produces takes the same ID, so re-sending a command whose append
// was acknowledged but whose ack was lost de-duplicates instead of doubling.
type Command interface{ CommandID() string }

// Create starts a job's history.
type Create struct {
	ID            string
	JobID         string
	UserID        string
	ProcessorType ProcessorType
	Params        map[string]any
	InputFiles    []InputFile
	Pool          string
}

// Start claims the current attempt for a worker run. Attempt is the job's
// RetryCount when the work item was issued.
type Start struct {
	ID       string
	Attempt  int
	WorkerID string
	Lease    string
}

// ReportProgress records progress of a processing job. Lease may be empty for
// the internal HTTP endpoint, which speaks for whoever holds the job.
type ReportProgress struct {
	ID       string
	Lease    string
	Progress int
	Message  string
}

// Complete finishes the attempt held by Lease with its result files.
type Complete struct {
	ID          string
	Lease       string
	ResultFiles []ResultFile
}

// Fail finishes an attempt with an error. An empty Lease is a system failure
// (worker lost, rejected before start) and is allowed while queued or
// processing.
type Fail struct {
	ID    string
	Lease string
	Error JobError
}

// Retry puts a failed job back in the queue.
type Retry struct{ ID string }

// Delete removes a job from every view; its history stays.
type Delete struct {
	ID           string
	CleanupFiles bool
}

func (c Create) CommandID() string         { return c.ID }
func (c Start) CommandID() string          { return c.ID }
func (c ReportProgress) CommandID() string { return c.ID }
func (c Complete) CommandID() string       { return c.ID }
func (c Fail) CommandID() string           { return c.ID }
func (c Retry) CommandID() string          { return c.ID }
func (c Delete) CommandID() string         { return c.ID }
