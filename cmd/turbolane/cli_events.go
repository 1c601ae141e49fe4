package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
)

// ErrForbiddenEvents is returned by `events --verify` when a history holds
// events the state machine would not have allowed.
var ErrForbiddenEvents = errors.New("the history holds events the state machine forbids")

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: turbolane events JOB_ID [--verify] [--json] [--server URL] [--api-key KEY|ADMIN_TOKEN]")
		fs.PrintDefaults()
	}
	verify := fs.Bool("verify", false, "replay the history through the state machine and report every event it would not have allowed")
	asJSON := fs.Bool("json", false, "print the server's JSON as it is")
	client := clientFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("events: name exactly one JOB_ID")
	}
	c, err := client()
	if err != nil {
		return err
	}
	var h cliEvents
	raw, err := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(pos[0])+"/events", nil, &h)
	if err != nil {
		return failed(err, "read the events of job %s", pos[0])
	}
	if *asJSON {
		if err := writeRaw(stdout, raw); err != nil {
			return err
		}
	}
	events, err := decodeHistory(h.Events)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "job %s: %d events\n", h.JobID, len(events))
		printTimeline(stdout, events)
	}
	if *verify {
		return verifyHistory(stdout, events)
	}
	return nil
}

// decodeHistory turns the CloudEvents of GET /jobs/{id}/events back into
// domain events.
func decodeHistory(raws []json.RawMessage) ([]domain.Event, error) {
	out := make([]domain.Event, 0, len(raws))
	for i, r := range raws {
		ev, err := eventstore.DecodeCloudEvent(r)
		if err != nil {
			return nil, fmt.Errorf("decode event #%d: %w", i+1, err)
		}
		ev.Sequence = uint64(i + 1)
		out = append(out, ev)
	}
	return out, nil
}

// verifyHistory replays events through domain.Verify, prints one line per
// violation (or that the history is valid) and returns ErrForbiddenEvents
// when there is any.
func verifyHistory(w io.Writer, events []domain.Event) error {
	v := domain.Verify(events)
	if len(v) == 0 {
		fmt.Fprintf(w, "verified: all %d events are transitions the state machine allows\n", len(events))
		return nil
	}
	for _, x := range v {
		fmt.Fprintf(w, "FORBIDDEN event #%d %s %s at %s: %v\n", x.Index+1, x.Event.Type, x.Event.ID, x.Event.Time.UTC().Format(time.RFC3339Nano), x.Err)
	}
	return fmt.Errorf("%w: %d of %d events", ErrForbiddenEvents, len(v), len(events))
}

func printTimeline(w io.Writer, events []domain.Event) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tEVENT\tDETAILS")
	for i, ev := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, ev.Time.UTC().Format("2006-01-02 15:04:05.000"), ev.Type, eventDetails(ev))
	}
	_ = tw.Flush()
}

// eventDetails is the one-line summary an auditor reads for each event.
func eventDetails(ev domain.Event) string {
	switch d := ev.Data.(type) {
	case domain.Created:
		names := make([]string, 0, len(d.InputFiles))
		for _, f := range d.InputFiles {
			names = append(names, fmt.Sprintf("%s (%s)", f.FileName, humanSize(f.SizeBytes)))
		}
		return fmt.Sprintf("user %s, %s, pool %s, input %s, params %s", d.UserID, d.ProcessorType, d.Pool, strings.Join(names, ", "), compactJSON(d.Params))
	case domain.Started:
		s := fmt.Sprintf("worker %s, attempt %d", d.WorkerID, d.Attempt)
		if d.Takeover {
			s += ", takeover"
		}
		return s
	case domain.Progressed:
		if d.Message != "" {
			return fmt.Sprintf("%d%% %s", d.Progress, d.Message)
		}
		return fmt.Sprintf("%d%%", d.Progress)
	case domain.Completed:
		names := make([]string, 0, len(d.ResultFiles))
		for _, f := range d.ResultFiles {
			names = append(names, fmt.Sprintf("%s %s (%s)", f.FileID, f.FileName, humanSize(f.SizeBytes)))
		}
		return fmt.Sprintf("results %s, %.2f s", strings.Join(names, ", "), d.ProcessingTimeSeconds)
	case domain.Failed:
		return fmt.Sprintf("error %s: %s, after %.2f s", d.Error.Code, d.Error.Message, d.ProcessingTimeSeconds)
	case domain.Retried:
		return fmt.Sprintf("retry %d", d.RetryCount)
	case domain.Deleted:
		if d.CleanupFiles {
			return "files deleted"
		}
		return "files kept"
	}
	return compactJSON(ev.Data)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
