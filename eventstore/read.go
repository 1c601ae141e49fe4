package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reads of one job's history use JetStream's batched direct get
// ($JS.API.DIRECT.GET.<stream> with next_by_subj and batch): one request
// returns every message on turbolane.jobs.<id>.* after a sequence, with no
// consumer to create and delete. That keeps Load at one round trip, which
// matters because Execute falls back to it on a cache miss or a conflict.
// On a replicated stream any replica may answer, so a read can trail the
// leader by a moment; Execute stays correct because the append that follows
// is checked against the leader's last subject sequence, and a read that
// finds nothing asks the leader again (readLeader) before reporting a 404.
const (
	directGetSubject = "$JS.API.DIRECT.GET." + eventsStream
	directBatch      = 512
	readTimeout      = 10 * time.Second
)

type directGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

type storedMsg struct {
	seq   uint64
	msgID string
	op    string // KV-Operation header (KV buckets: DEL or PURGE)
	data  []byte
}

// readAfter calls fn for every message of filter with a sequence above after,
// oldest first.
func (s *Store) readAfter(ctx context.Context, filter string, after uint64, fn func(storedMsg) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	start := after + 1
	for {
		next, err := s.readBatch(ctx, filter, start, fn)
		if err != nil || next == 0 {
			return err
		}
		start = next
	}
}

// readBatch reads one batch and returns the sequence to continue from, or 0
// when the history is exhausted.
func (s *Store) readBatch(ctx context.Context, filter string, start uint64, fn func(storedMsg) error) (uint64, error) {
	req, err := json.Marshal(directGetRequest{Seq: start, NextFor: filter, Batch: directBatch})
	if err != nil {
		return 0, fmt.Errorf("encode direct get request: %w", err)
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("subscribe for direct get: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(directGetSubject, inbox, req); err != nil {
		return 0, fmt.Errorf("send direct get request: %w", err)
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return 0, fmt.Errorf("read direct get reply: %w", err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
			sm, err := parseStored(msg)
			if err != nil {
				return 0, err
			}
			if err := fn(sm); err != nil {
				return 0, err
			}
		case "404":
			return 0, nil
		case "204": // end of batch
			pending, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			last, _ := strconv.ParseUint(msg.Header.Get("Nats-Last-Sequence"), 10, 64)
			if pending == 0 || last == 0 {
				return 0, nil
			}
			return last + 1, nil
		case "503":
			return 0, fmt.Errorf("direct get on %s: %w: no responders (stream missing?)", eventsStream, domain.ErrUnavailable)
		default:
			return 0, fmt.Errorf("direct get on %s: status %s %s", eventsStream, status, msg.Header.Get("Description"))
		}
	}
}

// lastMsg returns the newest message on filter; ok is false when none. It
// asks the stream leader (STREAM.MSG.GET), not any replica, because Append
// decides from it whether an earlier attempt went through.
func (s *Store) lastMsg(ctx context.Context, filter string) (storedMsg, bool, error) {
	return s.leaderGet(ctx, eventsStream, directGetRequest{LastFor: filter})
}

// readLeader is readAfter answered by the stream leader, one message per
// request. Reads fall back to it when a direct get found nothing: a replica
// that trails the leader must not turn a job that was just acknowledged (or
// a file that was just uploaded) into a 404 on another API replica.
func (s *Store) readLeader(ctx context.Context, filter string, after uint64, fn func(storedMsg) error) error {
	for start := after + 1; ; {
		sm, ok, err := s.leaderGet(ctx, eventsStream, directGetRequest{Seq: start, NextFor: filter})
		if err != nil || !ok {
			return err
		}
		if err := fn(sm); err != nil {
			return err
		}
		start = sm.seq + 1
	}
}

// leaderGet sends one STREAM.MSG.GET request to the leader of stream; ok is
// false when no message matches.
func (s *Store) leaderGet(ctx context.Context, stream string, get directGetRequest) (storedMsg, bool, error) {
	filter := get.LastFor + get.NextFor
	req, err := json.Marshal(get)
	if err != nil {
		return storedMsg{}, false, fmt.Errorf("encode message get request: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return storedMsg{}, false, fmt.Errorf("get message on %s from the leader of %s: %w", filter, stream, noAnswer(err))
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrorCode   int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Sequence uint64 `json:"seq"`
			Header   []byte `json:"hdrs"`
			Data     []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return storedMsg{}, false, fmt.Errorf("decode message on %s: %w", filter, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == int(jetstream.JSErrCodeMessageNotFound) {
			return storedMsg{}, false, nil
		}
		return storedMsg{}, false, fmt.Errorf("get message on %s: %s (%d)", filter, resp.Error.Description, resp.Error.ErrorCode)
	}
	if resp.Message == nil {
		return storedMsg{}, false, fmt.Errorf("get message on %s: empty reply", filter)
	}
	sm := storedMsg{seq: resp.Message.Sequence, data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return storedMsg{}, false, fmt.Errorf("decode headers of message %d: %w", sm.seq, err)
		}
		sm.msgID = hdr.Get(nats.MsgIdHdr)
		sm.op = hdr.Get("KV-Operation")
	}
	return sm, true, nil
}

func parseStored(msg *nats.Msg) (storedMsg, error) {
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return storedMsg{}, fmt.Errorf("direct get reply without a valid Nats-Sequence: %w", err)
	}
	return storedMsg{seq: seq, msgID: msg.Header.Get(nats.MsgIdHdr), data: msg.Data}, nil
}

func decodeStored(sm storedMsg) (domain.Event, error) {
	ev, err := DecodeCloudEvent(sm.data)
	if err != nil {
		return domain.Event{}, fmt.Errorf("decode event at sequence %d: %w", sm.seq, err)
	}
	ev.Sequence = sm.seq
	return ev, nil
}

// Load returns the job's history, oldest first, with Sequence set; an empty
// slice when the job has no events.
func (s *Store) Load(ctx context.Context, jobID string) ([]domain.Event, error) {
	filter, err := JobFilter(jobID)
	if err != nil {
		return nil, err
	}
	evs := []domain.Event{}
	collect := func(sm storedMsg) error {
		ev, err := decodeStored(sm)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	}
	err = s.readAfter(ctx, filter, 0, collect)
	if err == nil && len(evs) == 0 {
		err = s.readLeader(ctx, filter, 0, collect)
	}
	if err != nil {
		return nil, fmt.Errorf("load job %s: %w", jobID, err)
	}
	return evs, nil
}

// History returns the job's stored CloudEvents documents, oldest first,
// exactly as auditors receive them (including the source they were written
// with); an empty slice when the job has no events.
func (s *Store) History(ctx context.Context, jobID string) ([]CloudEvent, error) {
	filter, err := JobFilter(jobID)
	if err != nil {
		return nil, err
	}
	out := []CloudEvent{}
	collect := func(sm storedMsg) error {
		var ce CloudEvent
		if err := json.Unmarshal(sm.data, &ce); err != nil {
			return fmt.Errorf("decode cloudevent at sequence %d: %w", sm.seq, err)
		}
		out = append(out, ce)
		return nil
	}
	err = s.readAfter(ctx, filter, 0, collect)
	if err == nil && len(out) == 0 {
		err = s.readLeader(ctx, filter, 0, collect)
	}
	if err != nil {
		return nil, fmt.Errorf("read history of job %s: %w", jobID, err)
	}
	return out, nil
}

// advance folds the job's events after j.Version into j.
func (s *Store) advance(ctx context.Context, jobID string, j domain.Job) (domain.Job, error) {
	return s.fold(ctx, jobID, j, s.readAfter, "")
}

// advanceLeader is advance answered by the stream leader.
func (s *Store) advanceLeader(ctx context.Context, jobID string, j domain.Job) (domain.Job, error) {
	return s.fold(ctx, jobID, j, s.readLeader, " from the leader")
}

// fold applies the events read by read after j.Version to j.
func (s *Store) fold(ctx context.Context, jobID string, j domain.Job, read func(context.Context, string, uint64, func(storedMsg) error) error, from string) (domain.Job, error) {
	filter, err := JobFilter(jobID)
	if err != nil {
		return j, err
	}
	err = read(ctx, filter, j.Version, func(sm storedMsg) error {
		ev, err := decodeStored(sm)
		if err != nil {
			return err
		}
		j = domain.Apply(j, ev)
		return nil
	})
	if err != nil {
		return j, fmt.Errorf("load job %s%s after sequence %d: %w", jobID, from, j.Version, err)
	}
	return j, nil
}
