package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const jobsUsage = `Usage:
  turbolane jobs list [--status S] [--type TYPE] [--page N] [--limit N] [--json]
  turbolane jobs get ID [--json]
  turbolane jobs retry ID [--json]
  turbolane jobs delete ID [--keep-files]
Common flags: --server URL, --api-key KEY, --session FILE
(env TURBOLANE_SERVER, TURBOLANE_API_KEY, TURBOLANE_SESSION).
`

func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, jobsUsage)
		return errors.New("jobs: missing subcommand (list, get, retry, delete)")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, jobsUsage); fs.PrintDefaults() }
	client := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the server's JSON as it is")
	switch sub {
	case "list":
		status := fs.String("status", "", "only jobs in this status: queued, processing, completed, failed")
		typ := fs.String("type", "", "only jobs of this processor type")
		page := fs.Int("page", 1, "page number, from 1")
		limit := fs.Int("limit", 20, "jobs per page, 1–100")
		if _, err := parseInterspersed(fs, rest); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		q := url.Values{}
		if *status != "" {
			q.Set("status", *status)
		}
		if *typ != "" {
			q.Set("processor_type", *typ)
		}
		q.Set("page", strconv.Itoa(*page))
		q.Set("limit", strconv.Itoa(*limit))
		var list cliJobList
		raw, err := c.call(ctx, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, &list)
		if err != nil {
			return failed(err, "list jobs")
		}
		if *asJSON {
			return writeRaw(stdout, raw)
		}
		printJobList(stdout, list)
		return nil
	case "get", "retry", "delete":
		keep := false
		if sub == "delete" {
			fs.BoolVar(&keep, "keep-files", false, "keep the job's input and result files")
		}
		pos, err := parseInterspersed(fs, rest)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			fs.Usage()
			return fmt.Errorf("jobs %s: name exactly one job ID", sub)
		}
		id := pos[0]
		c, err := client()
		if err != nil {
			return err
		}
		path := "/api/v1/jobs/" + url.PathEscape(id)
		switch sub {
		case "get":
			j, raw, err := c.job(ctx, id)
			if err != nil {
				return failed(err, "get job %s", id)
			}
			if *asJSON {
				return writeRaw(stdout, raw)
			}
			printJob(stdout, j)
		case "retry":
			var j cliJob
			raw, err := c.call(ctx, http.MethodPost, path+"/retry", nil, &j)
			if err != nil {
				return failed(err, "retry job %s", id)
			}
			if *asJSON {
				return writeRaw(stdout, raw)
			}
			fmt.Fprintf(stdout, "job %s is %s again (retry %d)\n", j.JobID, j.Status, j.RetryCount)
		case "delete":
			if _, err := c.call(ctx, http.MethodDelete, path+"?cleanup_files="+strconv.FormatBool(!keep), nil, nil); err != nil {
				return failed(err, "delete job %s", id)
			}
			what := "and its files"
			if keep {
				what = "(files kept)"
			}
			fmt.Fprintf(stdout, "job %s deleted %s\n", id, what)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, jobsUsage)
		return nil
	}
	fmt.Fprint(stderr, jobsUsage)
	return fmt.Errorf("jobs: unknown subcommand %q", sub)
}

// shortTime prints an RFC 3339 timestamp to the second, in UTC.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func writeRaw(w io.Writer, raw []byte) error {
	s := strings.TrimRight(string(raw), "\n")
	_, err := fmt.Fprintln(w, s)
	return err
}

func printJobList(w io.Writer, list cliJobList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tTYPE\tPROGRESS\tCREATED\tRESULT")
	for _, j := range list.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d%%\t%s\t%s\n", j.JobID, j.Status, j.ProcessorType, j.Progress, shortTime(j.CreatedAt), jobOutcome(j))
	}
	_ = tw.Flush()
	p := list.Pagination
	fmt.Fprintf(w, "page %d of %d, %d jobs in all\n", p.Page, max(p.TotalPages, 1), p.Total)
}

// jobOutcome is a short summary: the result files, or the error code.
func jobOutcome(j cliJob) string {
	if j.Error != nil {
		return j.Error.Code
	}
	names := make([]string, 0, len(j.ResultFiles))
	for _, rf := range j.ResultFiles {
		names = append(names, rf.FileName)
	}
	return strings.Join(names, ", ")
}

func printJob(w io.Writer, j cliJob) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	row("job", j.JobID)
	row("user", j.UserID)
	row("status", j.Status)
	row("processor", j.ProcessorType)
	progress := fmt.Sprintf("%d%%", j.Progress)
	if j.ProgressMessage != "" {
		progress += " " + j.ProgressMessage
	}
	row("progress", progress)
	row("params", compactJSON(j.Params))
	row("retries", strconv.Itoa(j.RetryCount))
	row("created", j.CreatedAt)
	row("started", deref(j.StartedAt))
	row("completed", deref(j.CompletedAt))
	if j.EstimatedDuration != nil {
		row("estimated", fmt.Sprintf("%.1f s", *j.EstimatedDuration))
	}
	if j.Error != nil {
		row("error", j.Error.Code+": "+j.Error.Message)
	}
	for _, rf := range j.ResultFiles {
		row("result", fmt.Sprintf("%s  %s  %s  %s", rf.FileID, rf.FileName, rf.MimeType, humanSize(rf.SizeBytes)))
	}
	_ = tw.Flush()
}
