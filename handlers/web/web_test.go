package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/handlers/web"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{http.MethodGet, "/", http.StatusOK, "text/html", `<script src="/assets/app.js"`},
		{http.MethodHead, "/", http.StatusOK, "text/html", ""},
		{http.MethodGet, "/assets/app.js", http.StatusOK, "javascript", "/api/v1"},
		{http.MethodGet, "/assets/app.css", http.StatusOK, "text/css", ":root"},
		{http.MethodGet, "/assets/index.html", http.StatusNotFound, "", ""},
		{http.MethodGet, "/assets/nope.js", http.StatusNotFound, "", ""},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.contentType != "" {
				require.Contains(t, rec.Header().Get("Content-Type"), tc.contentType)
				require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			}
			if tc.contains != "" {
				require.Contains(t, rec.Body.String(), tc.contains)
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	etag := rec.Header().Get("ETag")
	require.NotEmpty(t, etag)
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "connect-src 'self'")

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotModified, rec.Code)
}

// TestNoRemoteResources keeps the page self-contained: nothing is loaded
// from another origin at run time.
func TestNoRemoteResources(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/", "/assets/app.js", "/assets/app.css"} {
		rec := httptest.NewRecorder()
		web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		body := rec.Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			require.False(t, strings.Contains(body, bad), "%s refers to %q", p, bad)
		}
	}
}
