package document

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// family is a LibreOffice application: what a document can become depends
// on it.
type family string

const (
	writer  family = "text document"
	calc    family = "spreadsheet"
	impress family = "presentation"
)

// outputs lists the formats each family converts to.
var outputs = map[family][]string{
	writer:  {"pdf", "docx", "odt", "rtf", "txt", "html"},
	calc:    {"pdf", "xlsx", "ods", "csv"},
	impress: {"pdf", "pptx", "odp"},
}

// formats maps an input format to its family.
var formats = map[string]family{
	"doc": writer, "docx": writer, "odt": writer, "rtf": writer, "txt": writer, "html": writer,
	"xls": calc, "xlsx": calc, "ods": calc, "csv": calc,
	"ppt": impress, "pptx": impress, "odp": impress,
}

// filters names LibreOffice's export filter per family and output format
// (the --convert-to argument).
var filters = map[family]map[string]string{
	writer: {
		"pdf": "pdf:writer_pdf_Export", "docx": "docx:MS Word 2007 XML", "odt": "odt:writer8",
		"rtf": "rtf:Rich Text Format", "txt": "txt:Text (encoded):UTF8", "html": "html:HTML (StarWriter)",
	},
	calc: {
		"pdf": "pdf:calc_pdf_Export", "xlsx": "xlsx:Calc MS Excel 2007 XML", "ods": "ods:calc8",
		"csv": "csv:Text - txt - csv (StarCalc):44,34,76",
	},
	impress: {
		"pdf": "pdf:impress_pdf_Export", "pptx": "pptx:Impress MS PowerPoint 2007 XML", "odp": "odp:impress8",
	},
}

// infilters forces the import filter for formats LibreOffice would otherwise
// open in the wrong application (HTML in Writer/Web cannot be saved as docx)
// or with a guessed encoding.
var infilters = map[string]string{
	"html": "HTML (StarWriter)",
	"txt":  "Text (encoded):UTF8",
	"csv":  "Text - txt - csv (StarCalc):44,34,76,1",
}

// mimeTypes are the result files' media types.
var mimeTypes = map[string]string{
	"pdf":  "application/pdf",
	"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"odt":  "application/vnd.oasis.opendocument.text",
	"rtf":  "application/rtf",
	"txt":  "text/plain",
	"html": "text/html",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"ods":  "application/vnd.oasis.opendocument.spreadsheet",
	"csv":  "text/csv",
	"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"odp":  "application/vnd.oasis.opendocument.presentation",
}

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	rtfMagic = []byte(`{\rtf`)
)

// detect finds the format of the document at path from its content; the
// name's extension only decides between the plain-text formats (txt, csv,
// html) and whether unrecognised bytes are a broken office document
// (corrupt_input) or something else (unsupported_format).
//
// maxUnpacked bounds the summed uncompressed size of a zip package's parts
// (a decompression bomb is input_too_large before LibreOffice sees it).
func detect(path, name string, maxUnpacked int64) (string, error) {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(name)), ".")
	if ext == "htm" {
		ext = "html"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read input: %w", err)
	}
	head = head[:n]
	switch {
	case n == 0:
		return "", domain.Failf(domain.CodeCorruptInput, "the document is empty")
	case bytes.HasPrefix(head, zipMagic):
		return detectZip(path, maxUnpacked)
	case bytes.HasPrefix(head, oleMagic):
		return detectOLE(f)
	case bytes.HasPrefix(head, rtfMagic):
		return "rtf", nil
	case isText(head):
		switch {
		case ext == "csv" || ext == "html":
			return ext, nil
		case ext != "txt" && looksHTML(head):
			return "html", nil
		case isBinaryFormat(ext):
			return "", domain.Failf(domain.CodeCorruptInput, "the file is named .%s but holds plain text", ext)
		}
		return "txt", nil
	case isBinaryFormat(ext) || ext == "rtf":
		return "", domain.Failf(domain.CodeCorruptInput, "the file is named .%s but is not a readable %s document", ext, ext)
	}
	return "", domain.Failf(domain.CodeUnsupportedFormat, "the file is not a document LibreOffice converts (doc, docx, odt, rtf, txt, html, xls, xlsx, ods, csv, ppt, pptx, odp)")
}

func isBinaryFormat(ext string) bool {
	switch ext {
	case "doc", "docx", "odt", "xls", "xlsx", "ods", "ppt", "pptx", "odp":
		return true
	}
	return false
}

// detectZip tells ODF and OOXML packages apart and finds encrypted ODF.
// A zip that cannot be opened (truncated: no central directory) is corrupt.
func detectZip(path string, maxUnpacked int64) (string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", domain.Failf(domain.CodeCorruptInput, "the document's zip container is damaged: %v", err)
	}
	defer zr.Close()
	entries := map[string]*zip.File{}
	var unpacked uint64
	for _, f := range zr.File {
		entries[f.Name] = f
		unpacked += f.UncompressedSize64
	}
	if maxUnpacked > 0 && unpacked > uint64(maxUnpacked) {
		return "", domain.Failf(domain.CodeInputTooLarge, "the document unpacks to %d bytes, more than the limit of %d", unpacked, maxUnpacked)
	}
	if mt, ok := entries["mimetype"]; ok {
		b, err := readEntry(mt, 256)
		if err != nil {
			return "", domain.Failf(domain.CodeCorruptInput, "read the document's mimetype: %v", err)
		}
		format := ""
		switch strings.TrimSpace(string(b)) {
		case "application/vnd.oasis.opendocument.text":
			format = "odt"
		case "application/vnd.oasis.opendocument.spreadsheet":
			format = "ods"
		case "application/vnd.oasis.opendocument.presentation":
			format = "odp"
		default:
			return "", domain.Failf(domain.CodeUnsupportedFormat, "OpenDocument type %q is not converted", strings.TrimSpace(string(b)))
		}
		if m, ok := entries["META-INF/manifest.xml"]; ok {
			b, err := readEntry(m, 4<<20)
			if err != nil {
				return "", domain.Failf(domain.CodeCorruptInput, "read the document's manifest: %v", err)
			}
			if bytes.Contains(b, []byte("encryption-data")) {
				return "", domain.Failf(domain.CodeWrongPassword, "the document is password-protected")
			}
		}
		return format, nil
	}
	if _, ok := entries["[Content_Types].xml"]; ok {
		switch {
		case entries["word/document.xml"] != nil:
			return "docx", nil
		case entries["xl/workbook.xml"] != nil:
			return "xlsx", nil
		case entries["ppt/presentation.xml"] != nil:
			return "pptx", nil
		}
		return "", domain.Failf(domain.CodeCorruptInput, "the Office Open XML package has no document, workbook or presentation part")
	}
	return "", domain.Failf(domain.CodeUnsupportedFormat, "a zip archive that is not an office document")
}

func readEntry(f *zip.File, max int64) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, max))
}

// OLE stream names, as they appear (UTF-16LE) in a compound file's
// directory. An encrypted OOXML document is a compound file holding
// EncryptionInfo and EncryptedPackage streams.
var oleStreams = []struct {
	name   string
	format string
}{
	{"EncryptedPackage", ""},
	{"WordDocument", "doc"},
	{"Workbook", "xls"},
	{"Book", "xls"},
	{"PowerPoint Document", "ppt"},
}

// detectOLE scans a compound file for the stream names that tell Word,
// Excel and PowerPoint apart. The directory may sit anywhere in the file, so
// the whole file is streamed through a small window.
func detectOLE(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind input: %w", err)
	}
	needles := make([][]byte, len(oleStreams))
	for i, s := range oleStreams {
		needles[i] = utf16le(s.name)
	}
	found := make([]bool, len(oleStreams))
	r := bufio.NewReaderSize(f, 64<<10)
	const overlap = 64
	buf := make([]byte, 0, 64<<10+overlap)
	chunk := make([]byte, 64<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for i, nd := range needles {
			if !found[i] && bytes.Contains(buf, nd) {
				found[i] = true
			}
		}
		if len(buf) > overlap {
			buf = append(buf[:0], buf[len(buf)-overlap:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read input: %w", err)
		}
	}
	if found[0] {
		return "", domain.Failf(domain.CodeWrongPassword, "the document is password-protected")
	}
	for i, s := range oleStreams[1:] {
		if found[i+1] {
			return s.format, nil
		}
	}
	return "", domain.Failf(domain.CodeUnsupportedFormat, "a compound file that is not a Word, Excel or PowerPoint document")
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return b
}

// isText reports whether b looks like text: no NUL and almost no control
// characters (any 8-bit encoding passes; LibreOffice is told UTF-8).
func isText(b []byte) bool {
	ctl := 0
	for _, c := range b {
		switch {
		case c == 0:
			return false
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b, c == 0x7f:
			ctl++
		}
	}
	return ctl*100 <= len(b)
}

func looksHTML(b []byte) bool {
	s := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(string(b[:min(len(b), 1024)]), "\uFEFF")))
	return strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html")
}
