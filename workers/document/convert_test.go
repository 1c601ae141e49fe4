package document

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
)

const fodp = `<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:body><office:presentation><draw:page draw:name="page1"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box><text:p>Hello slides</text:p></draw:text-box></draw:frame></draw:page></office:presentation></office:body></office:document>
`

// fixture converts src with a raw LibreOffice filter on one of e's
// instances (for inputs the engine itself does not accept, such as a flat
// ODP) and returns the result's path.
func fixture(t *testing.T, e *Engine, src, convertTo string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inst, err := e.acquire(ctx)
	require.NoError(t, err)
	out := t.TempDir()
	err = inst.convert(ctx, src, out, convertTo, "")
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	e.release(inst, reason)
	require.NoError(t, err)
	ext, _, _ := strings.Cut(convertTo, ":")
	p := filepath.Join(out, strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))+"."+ext)
	require.FileExists(t, p)
	return p
}

// fixtures are documents of each family made at test time.
type fixtures struct{ txt, docx, html, csv, xlsx, pptx, odp string }

func makeFixtures(t *testing.T, e *Engine) fixtures {
	t.Helper()
	var f fixtures
	f.txt = writeFile(t, "letter.txt", "Hello turbo lane\nSecond line\n")
	f.html = writeFile(t, "page.html", "<!DOCTYPE html><html><body><h1>Heading here</h1><p>Hello from HTML</p></body></html>")
	f.csv = writeFile(t, "table.csv", "name,count\napples,3\npears,5\n")
	out, err := convert(t, e, f.txt, "letter.txt", "docx")
	require.NoError(t, err)
	f.docx = out.Path
	out, err = convert(t, e, f.csv, "table.csv", "xlsx")
	require.NoError(t, err)
	f.xlsx = out.Path
	f.odp = fixture(t, e, writeFile(t, "slides.fodp", fodp), "odp:impress8")
	f.pptx = fixture(t, e, f.odp, "pptx:Impress MS PowerPoint 2007 XML")
	return f
}

func TestConvert(t *testing.T) {
	e := shared(t)
	f := makeFixtures(t, e)
	read := func(t *testing.T, p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name, in, inName, target, mime string
		check                          func(t *testing.T, path string)
	}{
		{"txt to pdf", f.txt, "letter.txt", "pdf", "application/pdf", func(t *testing.T, p string) {
			require.Contains(t, pdfText(t, p), "Hello turbo lane")
		}},
		{"txt to odt", f.txt, "letter.txt", "odt", "application/vnd.oasis.opendocument.text", func(t *testing.T, p string) { zipHas(t, p, "content.xml") }},
		{"txt to rtf", f.txt, "letter.txt", "rtf", "application/rtf", func(t *testing.T, p string) {
			require.True(t, strings.HasPrefix(read(t, p), `{\rtf`))
			require.Contains(t, read(t, p), "Hello turbo lane")
		}},
		{"docx to pdf", f.docx, "letter.docx", "pdf", "application/pdf", func(t *testing.T, p string) {
			require.Contains(t, pdfText(t, p), "Second line")
		}},
		{"docx to txt", f.docx, "letter.docx", "txt", "text/plain", func(t *testing.T, p string) {
			require.Contains(t, read(t, p), "Hello turbo lane")
		}},
		{"docx to html", f.docx, "letter.docx", "html", "text/html", func(t *testing.T, p string) {
			require.Contains(t, strings.ToLower(read(t, p)), "<html")
		}},
		{"html to docx", f.html, "page.html", "docx", mimeTypes["docx"], func(t *testing.T, p string) { zipHas(t, p, "word/document.xml") }},
		{"csv to ods", f.csv, "table.csv", "ods", mimeTypes["ods"], func(t *testing.T, p string) { zipHas(t, p, "content.xml") }},
		{"csv to pdf", f.csv, "table.csv", "pdf", "application/pdf", func(t *testing.T, p string) {
			require.Contains(t, pdfText(t, p), "apples")
		}},
		{"xlsx to csv round trip", f.xlsx, "table.xlsx", "csv", "text/csv", func(t *testing.T, p string) {
			require.Equal(t, "name,count\napples,3\npears,5\n", strings.ReplaceAll(read(t, p), "\r\n", "\n"))
		}},
		{"pptx to pdf", f.pptx, "slides.pptx", "pdf", "application/pdf", func(t *testing.T, p string) {
			require.Contains(t, pdfText(t, p), "Hello slides")
		}},
		{"odp to pptx", f.odp, "slides.odp", "pptx", mimeTypes["pptx"], func(t *testing.T, p string) { zipHas(t, p, "ppt/presentation.xml") }},
		{"pptx to odp", f.pptx, "slides.pptx", "odp", mimeTypes["odp"], func(t *testing.T, p string) { zipHas(t, p, "content.xml") }},
		// The family comes from the bytes: a workbook named .docx is a workbook.
		{"misnamed xlsx", f.xlsx, "table.docx", "csv", "text/csv", func(t *testing.T, p string) {
			require.Contains(t, read(t, p), "apples,3")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := convert(t, e, tt.in, tt.inName, tt.target)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSuffix(tt.inName, filepath.Ext(tt.inName))+"."+tt.target, out.Name)
			require.Equal(t, tt.mime, out.MimeType)
			tt.check(t, out.Path)
		})
	}
}

func TestHostileInputs(t *testing.T) {
	e := shared(t)
	f := makeFixtures(t, e)
	docx, err := os.ReadFile(f.docx)
	require.NoError(t, err)
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	var plainZip bytes.Buffer
	zw := zip.NewWriter(&plainZip)
	w, _ := zw.Create("notes.txt")
	_, _ = w.Write([]byte("not an office document"))
	require.NoError(t, zw.Close())
	// A docx whose central directory survives but whose main part is
	// garbage: LibreOffice itself has to refuse it.
	var badPart bytes.Buffer
	zw = zip.NewWriter(&badPart)
	for _, name := range []string{"[Content_Types].xml", "word/document.xml"} {
		w, _ := zw.Create(name)
		_, _ = w.Write(random)
	}
	require.NoError(t, zw.Close())

	tests := []struct {
		name, file string
		content    []byte
		target     string
		code       string
	}{
		{"zero length", "empty.docx", nil, "pdf", domain.CodeCorruptInput},
		{"truncated docx", "cut.docx", docx[:len(docx)/2], "pdf", domain.CodeCorruptInput},
		{"random bytes named xlsx", "noise.xlsx", random, "pdf", domain.CodeCorruptInput},
		{"random bytes unknown name", "noise.bin", random, "pdf", domain.CodeUnsupportedFormat},
		{"text named docx", "fake.docx", []byte("just some text\n"), "pdf", domain.CodeCorruptInput},
		{"zip that is no document", "archive.docx", plainZip.Bytes(), "pdf", domain.CodeUnsupportedFormat},
		{"presentation to csv", "slides.pptx", mustRead(t, f.pptx), "csv", domain.CodeUnsupportedFormat},
		{"text document to xlsx", "letter.docx", docx, "xlsx", domain.CodeUnsupportedFormat},
		{"encrypted odt", "secret.odt", encryptedODT(t, "s3cret"), "pdf", domain.CodeWrongPassword},
		{"encrypted ooxml container", "secret.docx", oleWithStreams("EncryptionInfo", "EncryptedPackage"), "pdf", domain.CodeWrongPassword},
		{"garbage docx part", "garbage.docx", badPart.Bytes(), "pdf", domain.CodeCorruptInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, e, writeFile(t, tt.file, string(tt.content)), tt.file, tt.target)
			var pe *domain.ProcessingError
			require.True(t, errors.As(err, &pe), "want a processing error, got %v", err)
			require.Equal(t, tt.code, pe.Code, "%v", err)
		})
	}
	// The engine still converts afterwards.
	out, err := convert(t, e, f.txt, "letter.txt", "pdf")
	require.NoError(t, err)
	require.Contains(t, pdfText(t, out.Path), "Hello turbo lane")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// oleWithStreams is the head of a compound file whose directory names the
// given streams; enough for detection, which must not need LibreOffice.
func oleWithStreams(names ...string) []byte {
	b := append([]byte{}, oleMagic...)
	b = append(b, make([]byte, 504)...)
	for _, n := range names {
		entry := make([]byte, 128)
		copy(entry, utf16le(n))
		b = append(b, entry...)
	}
	return b
}

// encryptedODT writes an ODF 1.2 package whose content.xml is encrypted
// the way LibreOffice does it: deflate, AES-256-CBC with a PBKDF2-SHA1 key
// (100 000 rounds) derived from SHA-256 of the password, sha256-1k checksum.
func encryptedODT(t *testing.T, password string) []byte {
	t.Helper()
	content := []byte(`<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:text><text:p>secret</text:p></office:text></office:body></office:document-content>`)
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, flate.BestCompression)
	require.NoError(t, err)
	_, _ = fw.Write(content)
	require.NoError(t, fw.Close())
	sum := sha256.Sum256(deflated.Bytes()[:min(1024, deflated.Len())])
	salt, iv := make([]byte, 16), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	start := sha256.Sum256([]byte(password))
	key, err := pbkdf2.Key(sha1.New, string(start[:]), salt, 100000, 32)
	require.NoError(t, err)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	plain := deflated.Bytes()
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	sealed := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(sealed, plain)

	b64 := base64.StdEncoding.EncodeToString
	manifest := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="application/vnd.oasis.opendocument.text"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="%d">
  <manifest:encryption-data manifest:checksum-type="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k" manifest:checksum="%s">
   <manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc" manifest:initialisation-vector="%s"/>
   <manifest:start-key-generation manifest:start-key-generation-name="http://www.w3.org/2000/09/xmldsig#sha256" manifest:key-size="32"/>
   <manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:key-size="32" manifest:iteration-count="100000" manifest:salt="%s"/>
  </manifest:encryption-data>
 </manifest:file-entry>
</manifest:manifest>`, len(content), b64(sum[:]), b64(iv), b64(salt))

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte, method uint16) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	add("mimetype", []byte("application/vnd.oasis.opendocument.text"), zip.Store)
	add("content.xml", sealed, zip.Store)
	add("META-INF/manifest.xml", []byte(manifest), zip.Deflate)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestZipBombIsTooLarge(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"[Content_Types].xml", "xl/workbook.xml"} {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(bytes.Repeat([]byte("<row/>"), 1<<19)) // 3 MiB, a few KiB packed
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	p := writeFile(t, "bomb.xlsx", buf.String())
	_, err := detect(p, "bomb.xlsx", 1<<20)
	var pe *domain.ProcessingError
	require.True(t, errors.As(err, &pe), "want a processing error, got %v", err)
	require.Equal(t, domain.CodeInputTooLarge, pe.Code)
	format, err := detect(p, "bomb.xlsx", 64<<20)
	require.NoError(t, err)
	require.Equal(t, "xlsx", format)
}
