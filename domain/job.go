package domain

import "time"

// Status is a job's lifecycle state as the API shows it.
type Status string

// The four statuses of the contract.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// ParseStatus validates a status filter.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusQueued, StatusProcessing, StatusCompleted, StatusFailed:
		return st, nil
	}
	return "", Validationf("status must be one of queued, processing, completed, failed; got %q", s)
}

// Terminal reports whether no further work happens without a retry.
func (s Status) Terminal() bool { return s == StatusCompleted || s == StatusFailed }

// Pools route work by input size.
const (
	PoolStandard = "standard"
	PoolLarge    = "large"
)

// InputFile is an input of a job, captured at creation so that the history
// says exactly what was processed.
type InputFile struct {
	FileID    string `json:"fileId"`
	FileName  string `json:"fileName"`
	MimeType  string `json:"mimeType"`
	SizeBytes int64  `json:"sizeBytes"`
}

// ResultFile is an output of a completed job. The download URL is derived at
// read time and is not part of the event.
type ResultFile struct {
	FileID    string `json:"fileId"`
	FileName  string `json:"fileName"`
	MimeType  string `json:"mimeType"`
	SizeBytes int64  `json:"sizeBytes"`
}

// Job is the aggregate state folded from a job's events.
type Job struct {
	ID              string
	UserID          string
	Status          Status
	ProcessorType   ProcessorType
	Progress        int
	ProgressMessage string
	Params          map[string]any
	InputFiles      []InputFile
	ResultFiles     []ResultFile
	Error           *JobError
	RetryCount      int
	Pool            string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	StartedAt       *time.Time
	CompletedAt     *time.Time
	// ProcessingSeconds is the duration of the last finished attempt.
	ProcessingSeconds float64
	// Lease identifies the worker run that holds the current attempt; only
	// that run may complete or fail it.
	Lease    string
	WorkerID string
	Deleted  bool
	// Version is the stream sequence of the last applied event (0: none).
	Version uint64
}

// Exists reports whether the job was created and not deleted.
func (j Job) Exists() bool { return j.ID != "" && !j.Deleted }

// OwnedBy reports whether the job exists and belongs to user.
func (j Job) OwnedBy(user string) bool { return j.Exists() && j.UserID == user }
