package handlers

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// kindMethodNotAllowed extends domain.Kind for the one HTTP-only failure
// that has no domain meaning, so that it still goes through httpStatus.
const kindMethodNotAllowed domain.Kind = 1000

// Errors of the HTTP layer itself.
var (
	errRouteNotFound    = domain.ErrNotFound.WithMessage("no such endpoint")
	errMethodNotAllowed = &domain.Error{Kind: kindMethodNotAllowed, Code: "method_not_allowed", Message: "this endpoint does not accept that method"}
	errPanic            = errors.New("handler panicked")
	errBodyTooLarge     = &domain.Error{Kind: domain.KindTooLarge, Code: "request_too_large", Message: "the request body is too large"}
	errNotUser          = domain.ErrForbidden.WithMessage("this token is not a user's API key; use an API key or no Authorization header")
	errTimeout          = domain.ErrUnavailable.WithMessage("a dependency did not answer in time; try again")
)

// errorBody is the one error shape of the API.
type errorBody struct {
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// retryAfter carries how long a rate-limited client should wait.
type retryAfter struct {
	err   error
	after time.Duration
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// kindStatus maps a domain error kind to its HTTP status.
var kindStatus = map[domain.Kind]int{
	domain.KindBadRequest:   http.StatusBadRequest,
	domain.KindUnauthorized: http.StatusUnauthorized,
	domain.KindForbidden:    http.StatusForbidden,
	domain.KindNotFound:     http.StatusNotFound,
	domain.KindConflict:     http.StatusConflict,
	domain.KindTooLarge:     http.StatusRequestEntityTooLarge,
	domain.KindInvalid:      http.StatusUnprocessableEntity,
	domain.KindRateLimited:  http.StatusTooManyRequests,
	domain.KindUnavailable:  http.StatusServiceUnavailable,
	kindMethodNotAllowed:    http.StatusMethodNotAllowed,
}

// httpStatus maps any error to its status, code and client-facing detail. It
// is the only place that decides status codes for errors: *domain.Error by
// Kind, timeouts as 503, anything else as a 500 whose detail says nothing
// about the cause.
func httpStatus(err error) (status int, code, detail string) {
	var de *domain.Error
	if errors.As(err, &de) {
		if st, ok := kindStatus[de.Kind]; ok {
			return st, de.Code, de.Message
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		_, code, detail = httpStatus(errTimeout)
		return http.StatusServiceUnavailable, code, detail
	}
	return http.StatusInternalServerError, domain.ErrInternal.Code, "an internal error occurred; it has been logged"
}

// writeError answers with the error body for err. Server-side failures are
// logged with the real error, which never reaches the client.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, detail := httpStatus(err)
	switch {
	case status >= 500 && errors.Is(r.Context().Err(), context.Canceled):
		s.log.Info("request cancelled by the client", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusTooManyRequests {
		secs := 1
		var ra *retryAfter
		if errors.As(err, &ra) {
			secs = max(1, int(math.Ceil(ra.after.Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, errorBody{Detail: detail, Code: code})
}
