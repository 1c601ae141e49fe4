package eventstore

import (
	"encoding/json"
	"testing"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

func TestCloudEventRoundTrip(t *testing.T) {
	t.Parallel()
	jobID := domain.NewJobID()
	payloads := []domain.EventData{
		domain.Created{UserID: "user_1", ProcessorType: "image_conversion", Params: map[string]any{"file_id": "file_x", "quality": 80.0}, InputFiles: []domain.InputFile{{FileID: "file_x", FileName: "a.jpg", MimeType: "image/jpeg", SizeBytes: 7}}, Pool: "standard"},
		domain.Started{Attempt: 1, WorkerID: "w1", Lease: "lease_1", Takeover: true},
		domain.Progressed{Progress: 42, Message: "half way"},
		domain.Completed{Lease: "lease_1", ResultFiles: []domain.ResultFile{{FileID: "file_y", FileName: "a.webp", MimeType: "image/webp", SizeBytes: 3}}, ProcessingTimeSeconds: 1.5},
		domain.Failed{Lease: "lease_1", Error: domain.JobError{Code: domain.CodeTimeout, Message: "took too long"}, ProcessingTimeSeconds: 2},
		domain.Retried{RetryCount: 2},
		domain.Deleted{CleanupFiles: true},
	}
	require.Len(t, payloads, len(domain.EventTypes), "every event type is covered")
	for _, data := range payloads {
		t.Run(string(data.EventType()), func(t *testing.T) {
			ev := event(jobID, data)
			ce := CloudEventOf(ev)
			b, err := json.Marshal(ce)
			require.NoError(t, err)

			var doc map[string]any
			require.NoError(t, json.Unmarshal(b, &doc))
			require.Equal(t, "1.0", doc["specversion"])
			require.Equal(t, ev.ID, doc["id"])
			require.Equal(t, DefaultSource, doc["source"])
			require.Equal(t, "com.convilyn.turbolane.job."+string(data.EventType()), doc["type"])
			require.Equal(t, jobID, doc["subject"])
			require.Equal(t, "2026-12-03T09:00:00.123456789Z", doc["time"])
			require.Equal(t, "application/json", doc["datacontenttype"])
			require.Equal(t, float64(1), doc["dataschemaversion"])
			require.IsType(t, map[string]any{}, doc["data"])

			got, err := DecodeCloudEvent(b)
			require.NoError(t, err)
			require.Equal(t, ev, got)
		})
	}
}

func TestDecodeCloudEventRejects(t *testing.T) {
	t.Parallel()
	good := CloudEventOf(createdEvent(domain.NewJobID()))
	tests := []struct {
		name   string
		mutate func(*CloudEvent)
	}{
		{"spec version", func(c *CloudEvent) { c.SpecVersion = "0.3" }},
		{"foreign type", func(c *CloudEvent) { c.Type = "com.example.created" }},
		{"unknown event", func(c *CloudEvent) { c.Type = TypePrefix + "exploded" }},
		{"future schema", func(c *CloudEvent) { c.DataSchemaVersion = domain.CurrentSchemaVersion + 1 }},
		{"no schema", func(c *CloudEvent) { c.DataSchemaVersion = 0 }},
		{"no id", func(c *CloudEvent) { c.ID = "" }},
		{"bad data", func(c *CloudEvent) { c.Data = json.RawMessage(`"nope"`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce := good
			tt.mutate(&ce)
			b, err := json.Marshal(ce)
			require.NoError(t, err)
			_, err = DecodeCloudEvent(b)
			require.Error(t, err)
		})
	}
	_, err := DecodeCloudEvent([]byte("{"))
	require.Error(t, err)
}

func TestSubjectsRejectHostileIDs(t *testing.T) {
	t.Parallel()
	for _, id := range hostileIDs {
		_, err := EventSubject(id, domain.EventCreated)
		require.ErrorIs(t, err, ErrInvalidJobID, id)
		require.ErrorIs(t, err, domain.ErrValidation, id)
		_, err = JobFilter(id)
		require.ErrorIs(t, err, ErrInvalidJobID, id)
	}
	id := domain.NewJobID()
	s, err := EventSubject(id, domain.EventCompleted)
	require.NoError(t, err)
	require.Equal(t, "turbolane.jobs."+id+".completed", s)
	_, err = EventSubject(id, "*")
	require.ErrorIs(t, err, ErrInvalidEvent)
}

var hostileIDs = []string{
	"", "*", ">", "job_*", "job_>", "job_0123456789abcdefghjkmnpqr.", "job_0123456789abcdefghjkmnp.*",
	"job_0123456789ABCDEFGHJKMNPQRS", "job_0123456789abcdefghjkmnpqrs.completed", "file_0123456789abcdefghjkmnpqrs",
	"job_0123456789abcdefghjkmnpq rs", "job_0123456789abcdefghjkmnpqrsx",
}
