package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// acked is a job the service promised to run: it answered 202.
type acked struct {
	ID     string
	Client *client
	At     time.Time
	Large  bool
}

// stats are the client-side figures of a run.
type stats struct {
	mu          sync.Mutex
	acked       []acked
	failed      map[string]int // failed requests (retried) by fault phase
	ambiguous   atomic.Int64   // creates whose outcome is unknown (no answer)
	rywMisses   atomic.Int64   // 404 on the other replica right after a 202
	rywChecks   atomic.Int64
	uploadFails atomic.Int64
}

func (s *stats) fail(phase string) {
	s.mu.Lock()
	s.failed[phase]++
	s.mu.Unlock()
}

// client is one user (its own anonymous session cookie) that talks to every
// API replica in turn.
type client struct {
	id   int
	urls []string
	http *http.Client
	rnd  *rand.Rand
}

func newClient(id int, urls []string) *client {
	jar, _ := cookiejar.New(nil) // cookies ignore the port: one session for all replicas
	return &client{id: id, urls: urls, rnd: rand.New(rand.NewPCG(uint64(id), 42)), http: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; err is a transport error (no answer).
func (c *client) do(ctx context.Context, method, url string, body []byte, contentType string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{res.StatusCode, res.Header, b}, nil
}

// jpegImage makes a w×h JPEG; noisy images compress badly, so they are
// large for their size and go to the large pool.
func jpegImage(rnd *rand.Rand, w, h int, noisy bool) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255}
			if noisy {
				c = color.RGBA{uint8(rnd.IntN(256)), uint8(rnd.IntN(256)), uint8(rnd.IntN(256)), 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	return buf.Bytes()
}

type job struct {
	JobID       string `json:"jobId"`
	Status      string `json:"status"`
	RetryCount  int    `json:"retryCount"`
	ResultFiles []struct {
		FileID      string `json:"fileId"`
		SizeBytes   int64  `json:"sizeBytes"`
		DownloadURL string `json:"downloadUrl"`
	} `json:"resultFiles"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func terminal(status string) bool { return status == "completed" || status == "failed" }

// retryable reports whether a request should be repeated: no answer, or a
// 5xx/429 from a replica that lost its NATS node or is restarting.
func retryable(res response, err error) bool {
	return err != nil || res.status >= 500 || res.status == http.StatusTooManyRequests
}

// run creates jobs until ctx ends. phase names the fault in progress.
func (c *client) run(ctx context.Context, st *stats, phase func() string, largeEvery int) {
	n := 0
	for ctx.Err() == nil {
		n++
		large := largeEvery > 0 && n%largeEvery == 0
		size := 32 + c.rnd.IntN(96)
		if large {
			size = 256
		}
		data := jpegImage(c.rnd, size, size, large)
		fileID, ok := c.upload(ctx, st, phase, n, data)
		if !ok {
			continue
		}
		format := []string{"png", "webp"}[c.rnd.IntN(2)]
		body, _ := json.Marshal(map[string]any{"processor_type": "image_conversion",
			"params": map[string]any{"file_id": fileID, "output_format": format}})
		var created job
		for ctx.Err() == nil {
			url := c.urls[(n+c.id)%len(c.urls)]
			res, err := c.do(ctx, http.MethodPost, url+"/api/v1/jobs", body, "application/json")
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// No answer: the job may or may not exist. Not a promise, so
				// not checked; a new create follows.
				st.ambiguous.Add(1)
			}
			if retryable(res, err) {
				st.fail(phase())
				n++
				time.Sleep(300 * time.Millisecond)
				continue
			}
			if res.status != http.StatusAccepted {
				fmt.Printf("client %d: create: unexpected %d %s\n", c.id, res.status, res.body)
				break
			}
			if json.Unmarshal(res.body, &created) != nil || created.JobID == "" {
				fmt.Printf("client %d: create: bad body %s\n", c.id, res.body)
				break
			}
			st.mu.Lock()
			st.acked = append(st.acked, acked{ID: created.JobID, Client: c, At: time.Now(), Large: large})
			st.mu.Unlock()
			// Read your own write on the other replica.
			other := c.urls[(n+c.id+1)%len(c.urls)]
			if r, err := c.do(ctx, http.MethodGet, other+"/api/v1/jobs/"+created.JobID, nil, ""); err == nil {
				switch {
				case r.status == http.StatusOK:
					st.rywChecks.Add(1)
				case r.status == http.StatusNotFound:
					st.rywChecks.Add(1)
					st.rywMisses.Add(1)
					fmt.Printf("client %d: %s: 404 on the other replica right after its 202\n", c.id, created.JobID)
				}
			}
			break
		}
		if created.JobID == "" {
			continue
		}
		// Poll a while, as a real client would, on alternating replicas.
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
			r, err := c.do(ctx, http.MethodGet, c.urls[i%len(c.urls)]+"/api/v1/jobs/"+created.JobID, nil, "")
			if err == nil && r.status == http.StatusOK {
				var j job
				if json.Unmarshal(r.body, &j) == nil && terminal(j.Status) {
					break
				}
			} else if retryable(r, err) && ctx.Err() == nil {
				st.fail(phase())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// upload sends a file through a replica, retrying on another one.
func (c *client) upload(ctx context.Context, st *stats, phase func() string, n int, data []byte) (string, bool) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, _ := w.CreateFormFile("file", fmt.Sprintf("c%d-%d.jpg", c.id, n))
	_, _ = part.Write(data)
	_ = w.Close()
	for i := 0; ctx.Err() == nil; i++ {
		res, err := c.do(ctx, http.MethodPost, c.urls[(n+i)%len(c.urls)]+"/api/v1/upload", buf.Bytes(), w.FormDataContentType())
		if ctx.Err() != nil {
			return "", false
		}
		if retryable(res, err) {
			st.fail(phase())
			st.uploadFails.Add(1)
			time.Sleep(300 * time.Millisecond)
			continue
		}
		var f struct{ FileID string }
		if res.status != http.StatusCreated || json.Unmarshal(res.body, &f) != nil {
			fmt.Printf("client %d: upload: %d %s\n", c.id, res.status, strings.TrimSpace(string(res.body)))
			return "", false
		}
		return f.FileID, true
	}
	return "", false
}

// get fetches a path from one replica, retrying transport errors and 5xx
// for up to a minute.
func (c *client) get(ctx context.Context, url string) (response, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := c.do(ctx, http.MethodGet, url, nil, "")
		if !retryable(res, err) || time.Now().After(deadline) || ctx.Err() != nil {
			return res, err
		}
		time.Sleep(300 * time.Millisecond)
	}
}
