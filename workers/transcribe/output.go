package transcribe

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Document is the json output: the whole text and the timed segments.
type Document struct {
	Engine   string    `json:"engine"`
	Language string    `json:"language,omitempty"`
	Duration float64   `json:"duration"`
	Text     string    `json:"text"`
	Segments []Segment `json:"segments"`
}

// MimeType returns the media type of an output format.
func MimeType(format string) string {
	switch format {
	case "srt":
		return "application/x-subrip"
	case "vtt":
		return "text/vtt"
	case "json":
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// WriteFile writes doc to path in format (txt, srt, vtt or json).
func WriteFile(path, format string, doc Document) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create transcript: %w", err)
	}
	w := bufio.NewWriter(f)
	err = Write(w, format, doc)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write transcript: %w", err)
	}
	return nil
}

// Write writes doc to w in format.
func Write(w io.Writer, format string, doc Document) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "srt":
		for i, s := range doc.Segments {
			p("%d\n%s --> %s\n%s\n\n", i+1, stamp(s.Start, ","), stamp(s.End, ","), oneLine(s.Text))
		}
	case "vtt":
		p("WEBVTT\n\n")
		for _, s := range doc.Segments {
			p("%s --> %s\n%s\n\n", stamp(s.Start, "."), stamp(s.End, "."), oneLine(s.Text))
		}
	default:
		for _, s := range doc.Segments {
			p("%s\n", oneLine(s.Text))
		}
	}
	return err
}

// oneLine keeps a cue on one line and removes the blank lines that would end
// it early.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "-->", "->")
}

// stamp formats seconds as HH:MM:SS,mmm (sep "," for SRT, "." for VTT).
func stamp(sec float64, sep string) string {
	ms := int64(math.Round(math.Max(0, sec) * 1000))
	h := ms / 3_600_000
	m := ms / 60_000 % 60
	s := ms / 1000 % 60
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", h, m, s, sep, ms%1000)
}
