package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Polling cadence the Turbo Lane spec recommends: first poll one second after
// creating the job, then every two seconds.
var (
	firstPoll = time.Second
	pollEvery = 2 * time.Second
)

// maxBatch is the contract's limit of items per batch and jobs per ZIP.
const maxBatch = 20

// inferOrder is the processor the CLI picks when several could turn an input
// extension into the --to format. image_compression is never inferred: it
// keeps the format, so it is only chosen with --processor.
var inferOrder = []string{
	"image_conversion", "document_conversion", "media_processing",
	"audio_transcription", "video_transcription", "pdf_operations", "ocr_processing",
}

var audioFormats = []string{"mp3", "m4a", "aac", "ogg", "opus", "wav", "flac"}

// paramFlags collects repeated --param k=v, typing numbers and booleans.
type paramFlags map[string]any

func (p paramFlags) String() string { return fmt.Sprint(map[string]any(p)) }

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	p[k] = typedValue(v)
	return nil
}

// typedValue reads "80" as a number, "true"/"false" as a boolean and anything
// else as a string; a value in double quotes ("\"1234\"") stays a string.
func typedValue(s string) any {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return f
	}
	return s
}

// convertItem is one input file on its way through the service.
type convertItem struct {
	path    string
	proc    cliProcessor
	params  map[string]any // without file_id and output_format
	file    cliFile
	job     cliJob
	created time.Time
}

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: turbolane convert FILE... --to FORMAT [--processor TYPE] [--param k=v]... [--out DIR] [--zip] [--server URL] [--api-key KEY]")
		fs.PrintDefaults()
	}
	to := fs.String("to", "", "output format, e.g. webp, pdf, txt, mp3 (required)")
	processor := fs.String("processor", "", "processor type (default: inferred from the input's extension and --to)")
	params := paramFlags{}
	fs.Var(params, "param", "processor parameter k=v, repeatable (numbers and true/false are typed)")
	outDir := fs.String("out", "", "write results into this directory (default: next to each input)")
	zipAll := fs.Bool("zip", false, "download all results as one ZIP instead of file by file")
	client := clientFlags(fs)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errors.New("convert: name at least one FILE")
	}
	format := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(*to), "."))
	if format == "" {
		return errors.New("convert: --to FORMAT is required")
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil {
			return failed(err, "convert")
		} else if st.IsDir() {
			return fmt.Errorf("convert: %s is a directory", f)
		}
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return failed(err, "convert: create --out directory")
		}
	}
	c, err := client()
	if err != nil {
		return err
	}
	cat, err := c.processors(ctx)
	if err != nil {
		return failed(err, "read the processor catalog")
	}

	items := make([]*convertItem, 0, len(files))
	for _, path := range files {
		ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
		proc, err := chooseProcessor(cat, *processor, ext, format)
		if err != nil {
			return failed(err, "%s", path)
		}
		items = append(items, &convertItem{path: path, proc: proc, params: jobParams(proc, ext, format, params)})
	}

	for _, it := range items {
		if err := uploadItem(ctx, c, it, stderr); err != nil {
			return err
		}
	}
	if err := createJobs(ctx, c, items, format); err != nil {
		return err
	}

	var failedCodes []string
	for _, it := range items {
		if err := waitItem(ctx, c, it, stderr); err != nil {
			return err
		}
		if it.job.Status == "failed" {
			code, msg := "unknown", "no error recorded"
			if it.job.Error != nil {
				code, msg = it.job.Error.Code, it.job.Error.Message
			}
			fmt.Fprintf(stderr, "%s: job %s failed: %s: %s\n", it.path, it.job.JobID, code, msg)
			failedCodes = append(failedCodes, code)
		}
	}

	if *zipAll {
		if err := downloadZip(ctx, c, items, *outDir, stdout); err != nil {
			return err
		}
	} else {
		for _, it := range items {
			if err := downloadResults(ctx, c, it, *outDir, stdout); err != nil {
				return err
			}
		}
	}
	if len(failedCodes) > 0 {
		return fmt.Errorf("%d of %d jobs failed (%s)", len(failedCodes), len(items), strings.Join(failedCodes, ", "))
	}
	return nil
}

// chooseProcessor picks the processor named by --processor, or else the
// first available one in inferOrder (then catalog order) that reads ext and
// writes format. The catalog decides, so processors that land later are
// inferred without a change here.
func chooseProcessor(cat cliCatalog, forced, ext, format string) (cliProcessor, error) {
	if forced != "" {
		var known []string
		for _, p := range cat.Processors {
			if p.ProcessorType == forced {
				return p, nil
			}
			known = append(known, p.ProcessorType)
		}
		return cliProcessor{}, fmt.Errorf("unknown processor %q (this server knows %s)", forced, strings.Join(known, ", "))
	}
	ordered := make([]cliProcessor, 0, len(cat.Processors))
	for _, name := range inferOrder {
		for _, p := range cat.Processors {
			if p.ProcessorType == name {
				ordered = append(ordered, p)
			}
		}
	}
	for _, p := range cat.Processors {
		if !slices.Contains(inferOrder, p.ProcessorType) && p.ProcessorType != "image_compression" {
			ordered = append(ordered, p)
		}
	}
	var unavailable []string
	for _, p := range ordered {
		if !slices.Contains(p.InputFormats, ext) || !slices.Contains(p.OutputFormats, format) {
			continue
		}
		if p.Available {
			return p, nil
		}
		unavailable = append(unavailable, p.ProcessorType)
	}
	if len(unavailable) > 0 {
		return cliProcessor{}, fmt.Errorf("unsupported format: %s converts .%s to %s but is not available on this server", strings.Join(unavailable, " or "), ext, format)
	}
	return cliProcessor{}, fmt.Errorf("unsupported format: no processor converts .%s to %s (name one with --processor; see GET /api/v1/processors)", ext, format)
}

// jobParams are the params of one job besides file_id and output_format:
// a default operation where the processor needs one, then the user's --param.
func jobParams(p cliProcessor, ext, format string, user paramFlags) map[string]any {
	out := map[string]any{}
	if _, ok := user["operation"]; !ok && len(p.Operations) > 0 {
		if op := defaultOperation(p.ProcessorType, ext, format); slices.Contains(p.Operations, op) {
			out["operation"] = op
		}
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

func defaultOperation(processor, ext, format string) string {
	switch processor {
	case "media_processing":
		switch {
		case format == "jpg" || format == "png":
			return "thumbnail"
		case slices.Contains(audioFormats, format) && !slices.Contains(audioFormats, ext):
			return "extract_audio"
		}
		return "transcode"
	case "pdf_operations":
		switch format {
		case "json":
			return "info"
		case "zip":
			return "split"
		}
		return "compress"
	}
	return ""
}

func uploadItem(ctx context.Context, c *apiClient, it *convertItem, stderr io.Writer) error {
	st, err := os.Stat(it.path)
	if err != nil {
		return failed(err, "convert")
	}
	var progress io.Writer
	if st.Size() > 0 {
		bar := newBar(stderr, st.Size(), true, "upload "+filepath.Base(it.path))
		defer bar.exit(bar.desc + " failed")
		progress = bar
		defer func() {
			if it.file.FileID != "" {
				bar.finish(bar.desc)
			}
		}()
	}
	f, err := c.upload(ctx, it.path, progress)
	if err != nil {
		return err
	}
	it.file = f
	return nil
}

// createJobs creates one job per item: items of the same processor go
// together as batches of up to 20, a lone item as a plain job.
func createJobs(ctx context.Context, c *apiClient, items []*convertItem, format string) error {
	var order []string
	groups := map[string][]*convertItem{}
	for _, it := range items {
		t := it.proc.ProcessorType
		if _, ok := groups[t]; !ok {
			order = append(order, t)
		}
		groups[t] = append(groups[t], it)
	}
	for _, t := range order {
		for chunk := range slices.Chunk(groups[t], maxBatch) {
			if err := createChunk(ctx, c, chunk, format); err != nil {
				return err
			}
		}
	}
	return nil
}

func createChunk(ctx context.Context, c *apiClient, chunk []*convertItem, format string) error {
	proc := chunk[0].proc
	outputFormat := ""
	if proc.hasParam("output_format") {
		outputFormat = format
	}
	if len(chunk) == 1 {
		it := chunk[0]
		params := map[string]any{"file_id": it.file.FileID}
		if outputFormat != "" {
			params["output_format"] = outputFormat
		}
		for k, v := range it.params {
			params[k] = v
		}
		body := map[string]any{"processor_type": proc.ProcessorType, "params": params}
		if _, err := c.call(ctx, http.MethodPost, "/api/v1/jobs", body, &it.job); err != nil {
			return failed(err, "create %s job for %s", proc.ProcessorType, it.path)
		}
		it.created = time.Now()
		return nil
	}
	type batchItem struct {
		FileID string         `json:"fileId"`
		Params map[string]any `json:"params,omitempty"`
	}
	body := struct {
		ProcessorType string      `json:"processorType"`
		OutputFormat  string      `json:"outputFormat,omitempty"`
		Items         []batchItem `json:"items"`
	}{ProcessorType: proc.ProcessorType, OutputFormat: outputFormat}
	for _, it := range chunk {
		body.Items = append(body.Items, batchItem{FileID: it.file.FileID, Params: it.params})
	}
	var res struct {
		Jobs []cliJob `json:"jobs"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/v1/jobs/batch", body, &res); err != nil {
		return failed(err, "create a batch of %d %s jobs", len(chunk), proc.ProcessorType)
	}
	if len(res.Jobs) != len(chunk) {
		return fmt.Errorf("create a batch of %d %s jobs: the server answered with %d jobs", len(chunk), proc.ProcessorType, len(res.Jobs))
	}
	now := time.Now()
	for i, it := range chunk {
		it.job, it.created = res.Jobs[i], now
	}
	return nil
}

// waitItem polls one job until it is completed or failed, with a progress
// bar showing its progressMessage.
func waitItem(ctx context.Context, c *apiClient, it *convertItem, stderr io.Writer) error {
	label := filepath.Base(it.path) + " " + it.job.JobID
	bar := newBar(stderr, 100, false, label)
	next := it.created.Add(firstPoll)
	for {
		select {
		case <-ctx.Done():
			bar.exit(label + " interrupted")
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		j, _, err := c.job(ctx, it.job.JobID)
		if err != nil {
			bar.exit(label + " unknown")
			return failed(err, "poll job %s", it.job.JobID)
		}
		it.job = j
		switch j.Status {
		case "completed":
			bar.finish(label + " completed")
			return nil
		case "failed":
			bar.exit(label + " failed")
			return nil
		}
		desc := label + " " + j.Status
		if j.ProgressMessage != "" {
			desc += ": " + j.ProgressMessage
		}
		bar.describe(desc)
		bar.set(min(max(j.Progress, 0), 99))
		next = time.Now().Add(pollEvery)
	}
}

// resultPath is where a result lands: --out, or next to its input, never
// over the input itself.
func resultPath(input, outDir, name string) string {
	dir := outDir
	if dir == "" {
		dir = filepath.Dir(input)
	}
	p := filepath.Join(dir, filepath.Base(name))
	if a, err1 := filepath.Abs(p); err1 == nil {
		if b, err2 := filepath.Abs(input); err2 == nil && a == b {
			ext := filepath.Ext(p)
			p = strings.TrimSuffix(p, ext) + ".turbolane" + ext
		}
	}
	return p
}

func downloadResults(ctx context.Context, c *apiClient, it *convertItem, outDir string, stdout io.Writer) error {
	if it.job.Status != "completed" {
		return nil
	}
	for _, rf := range it.job.ResultFiles {
		dest := resultPath(it.path, outDir, rf.FileName)
		n, err := c.download(ctx, http.MethodGet, "/api/v1/files/"+url.PathEscape(rf.FileID)+"/download", nil, dest)
		if err != nil {
			return failed(err, "download %s of job %s", rf.FileName, it.job.JobID)
		}
		fmt.Fprintf(stdout, "%s → %s (%s)\n", it.path, dest, humanSize(n))
	}
	return nil
}

// downloadZip fetches the completed jobs' results as ZIPs of up to 20 jobs
// (POST /jobs/download), into --out or next to the first input.
func downloadZip(ctx context.Context, c *apiClient, items []*convertItem, outDir string, stdout io.Writer) error {
	var done []string
	for _, it := range items {
		if it.job.Status == "completed" {
			done = append(done, it.job.JobID)
		}
	}
	if len(done) == 0 {
		return nil
	}
	dir := outDir
	if dir == "" {
		dir = filepath.Dir(items[0].path)
	}
	n := 0
	for chunk := range slices.Chunk(done, maxBatch) {
		n++
		name := "turbolane-results.zip"
		if len(done) > maxBatch {
			name = fmt.Sprintf("turbolane-results-%d.zip", n)
		}
		dest := filepath.Join(dir, name)
		size, err := c.download(ctx, http.MethodPost, "/api/v1/jobs/download", map[string]any{"jobIds": chunk}, dest)
		if err != nil {
			return failed(err, "download the results of %d jobs as a ZIP", len(chunk))
		}
		fmt.Fprintf(stdout, "%d jobs → %s (%s)\n", len(chunk), dest, humanSize(size))
	}
	return nil
}
