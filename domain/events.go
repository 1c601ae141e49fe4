package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventType names a job event; it is the last token of the event's subject.
type EventType string

// The seven job events of the contract.
const (
	EventCreated    EventType = "created"
	EventStarted    EventType = "started"
	EventProgressed EventType = "progressed"
	EventCompleted  EventType = "completed"
	EventFailed     EventType = "failed"
	EventRetried    EventType = "retried"
	EventDeleted    EventType = "deleted"
)

// EventTypes lists every event type, in lifecycle order.
var EventTypes = []EventType{EventCreated, EventStarted, EventProgressed, EventCompleted, EventFailed, EventRetried, EventDeleted}

// CurrentSchemaVersion is the dataschemaversion written for new events.
const CurrentSchemaVersion = 1

// Event is one immutable fact about a job.
type Event struct {
	// ID is unique per event and doubles as the Nats-Msg-Id; it is derived
	// from the command ID so that a retried append de-duplicates.
	ID            string
	JobID         string
	Type          EventType
	Time          time.Time
	SchemaVersion int
	Data          EventData
	// Sequence is the stream sequence, set when the event is read back.
	Sequence uint64
}

// EventData is the payload of an event; each event type has one.
type EventData interface{ EventType() EventType }

// Created is the payload of a created event.
type Created struct {
	UserID        string         `json:"userId"`
	ProcessorType ProcessorType  `json:"processorType"`
	Params        map[string]any `json:"params"`
	InputFiles    []InputFile    `json:"inputFiles"`
	Pool          string         `json:"pool"`
}

// Started is the payload of a started event. Takeover marks a restart of the
// same attempt after its previous worker stopped heart-beating.
type Started struct {
	Attempt  int    `json:"attempt"`
	WorkerID string `json:"workerId"`
	Lease    string `json:"lease"`
	Takeover bool   `json:"takeover,omitempty"`
}

// Progressed is the payload of a progressed event.
type Progressed struct {
	Progress int    `json:"progress"`
	Message  string `json:"message,omitempty"`
}

// Completed is the payload of a completed event.
type Completed struct {
	Lease                 string       `json:"lease,omitempty"`
	ResultFiles           []ResultFile `json:"resultFiles"`
	ProcessingTimeSeconds float64      `json:"processingTimeSeconds"`
}

// Failed is the payload of a failed event.
type Failed struct {
	Lease                 string   `json:"lease,omitempty"`
	Error                 JobError `json:"error"`
	ProcessingTimeSeconds float64  `json:"processingTimeSeconds"`
}

// Retried is the payload of a retried event.
type Retried struct {
	RetryCount int `json:"retryCount"`
}

// Deleted is the payload of a deleted event.
type Deleted struct {
	CleanupFiles bool `json:"cleanupFiles"`
}

func (Created) EventType() EventType    { return EventCreated }
func (Started) EventType() EventType    { return EventStarted }
func (Progressed) EventType() EventType { return EventProgressed }
func (Completed) EventType() EventType  { return EventCompleted }
func (Failed) EventType() EventType     { return EventFailed }
func (Retried) EventType() EventType    { return EventRetried }
func (Deleted) EventType() EventType    { return EventDeleted }

// upcasters turn data of an older schema version into the next version, per
// event type. Version 1 is the first, so there are none yet; a schema change
// adds CurrentSchemaVersion+1 and registers the step from the old version
// here, and old events keep reading.
var upcasters = map[EventType]map[int]func(json.RawMessage) (json.RawMessage, error){}

// DecodeEventData decodes the data of an event written with schema version
// version, upcasting it to the current version first.
func DecodeEventData(t EventType, version int, raw json.RawMessage) (EventData, error) {
	if version < 1 || version > CurrentSchemaVersion {
		return nil, fmt.Errorf("decode %s event: unknown dataschemaversion %d", t, version)
	}
	for v := version; v < CurrentSchemaVersion; v++ {
		up, ok := upcasters[t][v]
		if !ok {
			return nil, fmt.Errorf("decode %s event: no upcaster from version %d", t, v)
		}
		var err error
		if raw, err = up(raw); err != nil {
			return nil, fmt.Errorf("upcast %s event from version %d: %w", t, v, err)
		}
	}
	var d EventData
	switch t {
	case EventCreated:
		d = &Created{}
	case EventStarted:
		d = &Started{}
	case EventProgressed:
		d = &Progressed{}
	case EventCompleted:
		d = &Completed{}
	case EventFailed:
		d = &Failed{}
	case EventRetried:
		d = &Retried{}
	case EventDeleted:
		d = &Deleted{}
	default:
		return nil, fmt.Errorf("decode event: unknown type %q", t)
	}
	if err := json.Unmarshal(raw, d); err != nil {
		return nil, fmt.Errorf("decode %s event data: %w", t, err)
	}
	return deref(d), nil
}

func deref(d EventData) EventData {
	switch v := d.(type) {
	case *Created:
		return *v
	case *Started:
		return *v
	case *Progressed:
		return *v
	case *Completed:
		return *v
	case *Failed:
		return *v
	case *Retried:
		return *v
	case *Deleted:
		return *v
	}
	return d
}
