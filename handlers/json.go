package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// decodeJSON reads one JSON value from the body into v. Malformed JSON and
// wrong types are 400 invalid_json naming the field; an oversized body is 413.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	return decodeJSONFrom(body, v)
}

// decodeJSONFrom is decodeJSON without the HTTP plumbing, for fuzzing.
func decodeJSONFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge.WithMessage("the request body is larger than %d bytes", mbe.Limit)
		}
		return domain.ErrInvalidJSON.WithMessage("the request body must hold exactly one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return errBodyTooLarge.WithMessage("the request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return domain.ErrInvalidJSON.WithMessage("the request body is empty; send a JSON object")
	case errors.As(err, &syn):
		return domain.ErrInvalidJSON.WithMessage("the request body is not valid JSON (at byte %d): %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return domain.ErrInvalidJSON.WithMessage("the request body must be a JSON %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return domain.ErrInvalidJSON.WithMessage("field %s must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.ErrInvalidJSON.WithMessage("the request body is truncated JSON")
	}
	return domain.ErrInvalidJSON.WithMessage("the request body is not valid JSON: %s", err.Error())
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch {
	case k == "struct" || k == "map":
		return "an object"
	case k == "slice" || k == "array":
		return "an array"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case strings.HasPrefix(k, "int") || strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	}
	return fmt.Sprintf("of type %s", k)
}

// writeJSON answers with v as JSON. An encoding failure after the header is
// out can only cut the response short, so it is not reported further.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, status = []byte(`{"detail":"an internal error occurred; it has been logged","code":"internal_error"}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
