package blobstore_test

import (
	"mime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/blobstore"
)

func TestContentDisposition(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, header, name string }{
		{"", "attachment", ""},
		{"..", "attachment", ""},
		{"a.pdf", `attachment; filename="a.pdf"`, "a.pdf"},
		{"ä.pdf", `attachment; filename="_.pdf"; filename*=UTF-8''%C3%A4.pdf`, "ä.pdf"},
		{`q"uote\.txt`, `attachment; filename="q_uote_.txt"; filename*=UTF-8''q%22uote_.txt`, `q"uote_.txt`},
		{"50%.txt", `attachment; filename="50_.txt"; filename*=UTF-8''50%25.txt`, "50%.txt"},
		{"tab\there.txt", `attachment; filename="tabhere.txt"`, "tabhere.txt"},
		{"bad\xffutf8", `attachment; filename="bad_utf8"`, "bad_utf8"},
		{strings.Repeat("é", 150), "", strings.Repeat("é", 100)},
	} {
		got := blobstore.ContentDisposition(tc.in)
		if tc.header != "" {
			assert.Equal(t, tc.header, got, tc.in)
		}
		assert.NotContains(t, got, "\r")
		assert.NotContains(t, got, "\n")
		if tc.name == "" {
			continue
		}
		_, params, err := mime.ParseMediaType(got)
		require.NoError(t, err, got)
		assert.Equal(t, tc.name, params["filename"], tc.in)
	}
}

func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"a.pdf", "résumé.pdf", "a/b", "\r\n", `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		h := blobstore.ContentDisposition(name)
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("header %q contains a control character", h)
		}
		if h == "attachment" {
			return
		}
		_, params, err := mime.ParseMediaType(h)
		if err != nil {
			t.Fatalf("header %q does not parse: %v", h, err)
		}
		if strings.ContainsAny(params["filename"], "/\\") {
			t.Fatalf("file name %q contains a path separator", params["filename"])
		}
	})
}
