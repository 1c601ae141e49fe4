package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// Counts are the figures of one processor type.
type Counts struct {
	Completed             int     `json:"completed"`
	Failed                int     `json:"failed"`
	MeanProcessingSeconds float64 `json:"meanProcessingSeconds"` // over completed attempts
	totalSeconds          float64
}

// Tally folds events into per-type Counts. Delivery is at least once, so it
// drops an event whose stream sequence is not past the last one it counted
// for the same job (events of one job arrive in stream order). It is safe
// for concurrent use.
type Tally struct {
	mu     sync.Mutex
	jobs   map[string]jobState
	counts map[domain.ProcessorType]*Counts
}

type jobState struct {
	typ     domain.ProcessorType
	lastSeq uint64
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{jobs: map[string]jobState{}, counts: map[domain.ProcessorType]*Counts{}}
}

// metaSequence is the watermill metadata key holding the stream sequence.
const metaSequence = "stream_sequence"

// Handle is the watermill handler: it counts one message. A message that is
// not a Turbo Lane event of a known version is logged and skipped (acked),
// never retried forever; see docs/events.md, "Versioning".
func (t *Tally) Handle(msg *message.Message) error {
	ev, err := eventstore.DecodeCloudEvent(msg.Payload)
	if err != nil {
		// A newer dataschemaversion or a foreign message: skip it.
		fmt.Printf("skip message %s: %v\n", msg.UUID, err)
		return nil
	}
	seq, _ := strconv.ParseUint(msg.Metadata.Get(metaSequence), 10, 64)
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.jobs[ev.JobID]
	if seq != 0 && seq <= st.lastSeq {
		return nil // a redelivery
	}
	st.lastSeq = seq
	switch d := ev.Data.(type) {
	case domain.Created:
		st.typ = d.ProcessorType
	case domain.Completed:
		c := t.of(st.typ)
		c.Completed++
		c.totalSeconds += d.ProcessingTimeSeconds
		c.MeanProcessingSeconds = c.totalSeconds / float64(c.Completed)
	case domain.Failed:
		t.of(st.typ).Failed++
	}
	t.jobs[ev.JobID] = st
	return nil
}

func (t *Tally) of(typ domain.ProcessorType) *Counts {
	if typ == "" {
		typ = "unknown" // the created event came before this consumer's start
	}
	c := t.counts[typ]
	if c == nil {
		c = &Counts{}
		t.counts[typ] = c
	}
	return c
}

// Snapshot returns a copy of the counts by processor type.
func (t *Tally) Snapshot() map[string]Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Counts, len(t.counts))
	for k, v := range t.counts {
		out[string(k)] = *v
	}
	return out
}

// String renders the snapshot as one line per type, sorted.
func (t *Tally) String() string {
	snap := t.Snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		c := snap[k]
		s += fmt.Sprintf("%-22s completed %6d  failed %6d  mean %.3fs\n", k, c.Completed, c.Failed, c.MeanProcessingSeconds)
	}
	return s
}

// MarshalJSON serves the snapshot.
func (t *Tally) MarshalJSON() ([]byte, error) { return json.Marshal(t.Snapshot()) }
