package blobstore

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// ContentDisposition returns an attachment Content-Disposition header value
// naming fileName, safe under RFC 6266: control characters and path
// separators are dropped or replaced, the quoted filename parameter is a
// plain-ASCII fallback, and a name that needs more gets an RFC 5987
// filename* parameter in UTF-8. An empty name yields plain "attachment".
func ContentDisposition(fileName string) string {
	name := sanitizeFileName(fileName)
	if name == "" {
		return "attachment"
	}
	var fallback strings.Builder
	for _, r := range name {
		if r >= 0x20 && r < 0x7f && r != '"' && r != '\\' && r != '%' {
			fallback.WriteRune(r)
		} else {
			fallback.WriteByte('_')
		}
	}
	if fallback.String() == name {
		return `attachment; filename="` + name + `"`
	}
	return `attachment; filename="` + fallback.String() + `"; filename*=UTF-8''` + encodeRFC5987(name)
}

// sanitizeFileName keeps a downloaded file from landing outside the user's
// download folder or breaking the header: no control characters, no path
// separators, valid UTF-8, at most 200 bytes.
func sanitizeFileName(s string) string {
	s = strings.ToValidUTF8(s, "_")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '/' || r == '\\':
			b.WriteByte('_')
		case unicode.IsControl(r) || r == utf8.RuneError:
			// dropped: a CR or LF would split the header
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	if out == "." || out == ".." {
		return ""
	}
	for len(out) > 200 {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	return out
}

func encodeRFC5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String()
}
