package transcribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// OpenAI calls an OpenAI-compatible POST /v1/audio/transcriptions endpoint
// with response_format verbose_json. The WAV is streamed in the multipart
// body, never held in memory.
type OpenAI struct {
	// URL is the base URL: "https://api.openai.com" or ".../v1".
	URL string
	// Key is sent as a bearer token when not empty.
	Key string
	// Model is the model name (default "whisper-1").
	Model string
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
}

var _ Transcriber = OpenAI{}

// Name implements Transcriber.
func (OpenAI) Name() string { return "openai" }

// Endpoint returns the transcription URL.
func (o OpenAI) Endpoint() string {
	u := strings.TrimRight(o.URL, "/")
	if strings.HasSuffix(u, "/audio/transcriptions") {
		return u
	}
	if !strings.HasSuffix(u, "/v1") {
		u += "/v1"
	}
	return u + "/audio/transcriptions"
}

// Transcribe implements Transcriber.
func (o OpenAI) Transcribe(ctx context.Context, wav string, opts Options) ([]Segment, error) {
	f, err := os.Open(wav)
	if err != nil {
		return nil, fmt.Errorf("open audio for upload: %w", err)
	}
	defer f.Close()
	model := o.Model
	if model == "" {
		model = "whisper-1"
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, kv := range [][2]string{{"model", model}, {"response_format", "verbose_json"}, {"language", opts.Language}} {
				if kv[1] == "" {
					continue
				}
				if err := mw.WriteField(kv[0], kv[1]); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(wav))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		_ = pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Endpoint(), pr)
	if err != nil {
		_ = pr.CloseWithError(err)
		return nil, fmt.Errorf("build transcription request: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if o.Key != "" {
		req.Header.Set("Authorization", "Bearer "+o.Key)
	}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	_ = pr.CloseWithError(errors.New("request done"))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("call transcription endpoint: %w", ctx.Err())
		}
		return nil, domain.Failf(domain.CodeProcessorError, "call transcription endpoint: %v", err)
	}
	defer res.Body.Close()
	body := io.LimitReader(res.Body, 64<<20)
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(body, 2048))
		return nil, domain.Failf(domain.CodeProcessorError, "transcription endpoint answered %s: %s", res.Status, strings.TrimSpace(string(msg)))
	}
	segs, err := ParseVerboseJSON(body)
	if err != nil {
		return nil, domain.Failf(domain.CodeProcessorError, "read transcription endpoint answer: %v", err)
	}
	if opts.Progress != nil {
		opts.Progress(wavSeconds(wav))
	}
	return segs, nil
}

// ParseVerboseJSON reads an OpenAI verbose_json transcription: "segments"
// with start, end (seconds) and text, and optional "words". A response
// without segments becomes one segment with the whole text.
func ParseVerboseJSON(r io.Reader) ([]Segment, error) {
	var doc struct {
		Text     string  `json:"text"`
		Duration float64 `json:"duration"`
		Segments []struct {
			Start float64 `json:"start"`
			End   float64 `json:"end"`
			Text  string  `json:"text"`
		} `json:"segments"`
		Words []Word `json:"words"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode verbose_json: %w", err)
	}
	var segs []Segment
	for _, s := range doc.Segments {
		if t := strings.TrimSpace(s.Text); t != "" {
			segs = append(segs, Segment{Start: s.Start, End: s.End, Text: t})
		}
	}
	if len(segs) == 0 && strings.TrimSpace(doc.Text) != "" {
		segs = []Segment{{Start: 0, End: doc.Duration, Text: strings.TrimSpace(doc.Text)}}
	}
	// Give each segment the words that fall inside it.
	for _, w := range doc.Words {
		for i := range segs {
			if w.Start >= segs[i].Start && w.Start < segs[i].End {
				segs[i].Words = append(segs[i].Words, w)
				break
			}
		}
	}
	return segs, nil
}
