package eventstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// CloudEvents constants of the contract.
const (
	SpecVersion     = "1.0"
	TypePrefix      = "com.convilyn.turbolane.job."
	DefaultSource   = "turbolane"
	DataContentType = "application/json"
)

// CloudEvent is the CloudEvents 1.0 JSON document stored for each job event
// on JOB_EVENTS and served to auditors.
type CloudEvent struct {
	SpecVersion       string          `json:"specversion"`
	ID                string          `json:"id"`
	Source            string          `json:"source"`
	Type              string          `json:"type"`
	Subject           string          `json:"subject"`
	Time              time.Time       `json:"time"`
	DataContentType   string          `json:"datacontenttype"`
	DataSchemaVersion int             `json:"dataschemaversion"`
	Data              json.RawMessage `json:"data"`
}

// CloudEventOf encodes ev with DefaultSource. Data is JSON null if the
// payload cannot be marshalled; Append reports that case as an error.
func CloudEventOf(ev domain.Event) CloudEvent {
	ce, err := cloudEventOf(ev, DefaultSource)
	if err != nil {
		ce.Data = json.RawMessage("null")
	}
	return ce
}

func cloudEventOf(ev domain.Event, source string) (CloudEvent, error) {
	version := ev.SchemaVersion
	if version == 0 {
		version = domain.CurrentSchemaVersion
	}
	ce := CloudEvent{
		SpecVersion:       SpecVersion,
		ID:                ev.ID,
		Source:            source,
		Type:              TypePrefix + string(ev.Type),
		Subject:           ev.JobID,
		Time:              ev.Time.UTC(),
		DataContentType:   DataContentType,
		DataSchemaVersion: version,
	}
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return ce, fmt.Errorf("encode %s event %s data: %w", ev.Type, ev.ID, err)
	}
	ce.Data = data
	return ce, nil
}

// DecodeCloudEvent decodes a stored CloudEvents document into a domain event,
// upcasting old data schema versions. Sequence is left zero.
func DecodeCloudEvent(b []byte) (domain.Event, error) {
	var ce CloudEvent
	if err := json.Unmarshal(b, &ce); err != nil {
		return domain.Event{}, fmt.Errorf("decode cloudevent: %w", err)
	}
	return ce.Event()
}

// Event converts the document into a domain event, upcasting old data schema
// versions. Sequence is left zero.
func (ce CloudEvent) Event() (domain.Event, error) {
	if ce.SpecVersion != SpecVersion {
		return domain.Event{}, fmt.Errorf("decode cloudevent %s: unsupported specversion %q", ce.ID, ce.SpecVersion)
	}
	name, ok := strings.CutPrefix(ce.Type, TypePrefix)
	if !ok || !knownEventType(domain.EventType(name)) {
		return domain.Event{}, fmt.Errorf("decode cloudevent %s: unknown type %q", ce.ID, ce.Type)
	}
	if ce.ID == "" {
		return domain.Event{}, fmt.Errorf("decode cloudevent of job %s: empty id", ce.Subject)
	}
	t := domain.EventType(name)
	data, err := domain.DecodeEventData(t, ce.DataSchemaVersion, ce.Data)
	if err != nil {
		return domain.Event{}, fmt.Errorf("decode cloudevent %s: %w", ce.ID, err)
	}
	return domain.Event{
		ID:            ce.ID,
		JobID:         ce.Subject,
		Type:          t,
		Time:          ce.Time.UTC(),
		SchemaVersion: domain.CurrentSchemaVersion,
		Data:          data,
	}, nil
}

func knownEventType(t domain.EventType) bool {
	for _, k := range domain.EventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Subject layout of the contract. Every function that builds a subject from
// an id checks the id first, so a hostile id ("*", ">", "a.b") can never
// widen a filter or land on another job's subject.
const (
	jobsPrefix   = "turbolane.jobs."
	jobsAll      = "turbolane.jobs.>"
	workPrefix   = "turbolane.work."
	workAll      = "turbolane.work.>"
	eventsStream = "JOB_EVENTS"
	workStream   = "TURBOLANE_WORK"
	filesBucket  = "TURBOLANE_FILES"
	keysBucket   = "TURBOLANE_API_KEYS"
)

func checkJobID(id string) error {
	if !domain.ValidID("job", id) {
		return invalid(ErrInvalidJobID, "%q is not a valid job id", id)
	}
	return nil
}

// EventSubject returns turbolane.jobs.<job_id>.<event>.
func EventSubject(jobID string, t domain.EventType) (string, error) {
	if err := checkJobID(jobID); err != nil {
		return "", err
	}
	if !knownEventType(t) {
		return "", invalid(ErrInvalidEvent, "unknown event type %q", t)
	}
	return jobsPrefix + jobID + "." + string(t), nil
}

// JobFilter returns turbolane.jobs.<job_id>.*, the subject filter of one
// job's history.
func JobFilter(jobID string) (string, error) {
	if err := checkJobID(jobID); err != nil {
		return "", err
	}
	return jobsPrefix + jobID + ".*", nil
}
