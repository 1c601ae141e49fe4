package domain

import "time"

// JobStats is the per-job statistics view of the contract.
type JobStats struct {
	JobID                 string        `json:"jobId"`
	Status                Status        `json:"status"`
	ProcessorType         ProcessorType `json:"processorType"`
	Progress              int           `json:"progress"`
	InputFilesCount       int           `json:"inputFilesCount"`
	OutputFilesCount      int           `json:"outputFilesCount"`
	TotalInputSizeBytes   int64         `json:"totalInputSizeBytes"`
	TotalOutputSizeBytes  int64         `json:"totalOutputSizeBytes"`
	ProcessingTimeSeconds *float64      `json:"processingTimeSeconds"`
	RetryCount            int           `json:"retryCount"`
	CreatedAt             time.Time     `json:"createdAt"`
	UpdatedAt             time.Time     `json:"updatedAt"`
	CompletedAt           *time.Time    `json:"completedAt"`
}

// StatsOf derives a job's stats from its state.
func StatsOf(j Job) JobStats {
	s := JobStats{
		JobID: j.ID, Status: j.Status, ProcessorType: j.ProcessorType, Progress: j.Progress,
		InputFilesCount: len(j.InputFiles), OutputFilesCount: len(j.ResultFiles),
		RetryCount: j.RetryCount, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, CompletedAt: j.CompletedAt,
	}
	for _, f := range j.InputFiles {
		s.TotalInputSizeBytes += f.SizeBytes
	}
	for _, f := range j.ResultFiles {
		s.TotalOutputSizeBytes += f.SizeBytes
	}
	if j.Status.Terminal() {
		p := j.ProcessingSeconds
		s.ProcessingTimeSeconds = &p
	}
	return s
}

// ListQuery is a page of a user's jobs, filtered and sorted.
type ListQuery struct {
	UserID        string
	Status        Status        // empty: any
	ProcessorType ProcessorType // empty: any
	SortBy        string        // createdAt, updatedAt or status
	Descending    bool
	Page          int // from 1
	Limit         int // 1–100
}

// ParseSortBy accepts the camelCase and snake_case sort keys.
func ParseSortBy(s string) (string, error) {
	switch s {
	case "", "createdAt", "created_at":
		return "createdAt", nil
	case "updatedAt", "updated_at":
		return "updatedAt", nil
	case "status":
		return "status", nil
	}
	return "", Validationf("sort_by must be one of createdAt, updatedAt, status, created_at, updated_at; got %q", s)
}
