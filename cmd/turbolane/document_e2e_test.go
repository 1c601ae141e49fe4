package main

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
)

// TestDocumentsThroughAPI converts a text document, a spreadsheet round
// trip and two bad inputs through the API on a warm LibreOffice.
func TestDocumentsThroughAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts LibreOffice")
	}
	m := startServe(t)
	c := newClient(t, m.URL, "")
	var cat struct {
		Processors []struct {
			ProcessorType string
			Available     bool
		}
	}
	c.get("/api/v1/processors").json(t, &cat)
	for _, p := range cat.Processors {
		if p.ProcessorType == "document_conversion" && !p.Available {
			t.Fatal("document_conversion is not available in the catalog")
		}
	}
	convert := func(name string, data []byte, to string) jobJSON {
		t.Helper()
		id := c.upload(name, data)
		return c.waitJob(c.createJob("document_conversion", map[string]any{"file_id": id, "output_format": to}).JobID)
	}
	result := func(j jobJSON, name, mime string) []byte {
		t.Helper()
		if j.Status != "completed" || len(j.ResultFiles) != 1 || j.Progress != 100 {
			t.Fatalf("job %+v", j)
		}
		if rf := j.ResultFiles[0]; rf.FileName != name || rf.MimeType != mime {
			t.Fatalf("result %+v, want %s (%s)", rf, name, mime)
		}
		return c.download(j.ResultFiles[0].DownloadURL).Body
	}

	pdf := result(convert("letter.txt", []byte("Hello from the API\n"), "pdf"), "letter.pdf", "application/pdf")
	if got := pdfText(t, pdf); !strings.Contains(got, "Hello from the API") {
		t.Fatalf("pdf text %q", got)
	}

	xlsx := result(convert("table.csv", []byte("fruit,count\napples,3\npears,5\n"), "xlsx"), "table.xlsx",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	zr, err := zip.NewReader(bytes.NewReader(xlsx), int64(len(xlsx)))
	if err != nil {
		t.Fatalf("xlsx is not a zip: %v", err)
	}
	found := false
	for _, f := range zr.File {
		found = found || f.Name == "xl/workbook.xml"
	}
	if !found {
		t.Fatal("xlsx has no xl/workbook.xml")
	}
	csv := result(convert("table.xlsx", xlsx, "csv"), "table.csv", "text/csv")
	if got := strings.ReplaceAll(string(csv), "\r\n", "\n"); got != "fruit,count\napples,3\npears,5\n" {
		t.Fatalf("csv round trip %q", got)
	}

	for _, tc := range []struct{ name, to, code string }{
		{"cut.xlsx", "pdf", "corrupt_input"},         // truncated: the zip's central directory is gone
		{"table.xlsx", "docx", "unsupported_format"}, // a spreadsheet cannot become a text document
	} {
		data := xlsx
		if strings.HasPrefix(tc.name, "cut") {
			data = xlsx[:len(xlsx)/2]
		}
		j := convert(tc.name, data, tc.to)
		if j.Status != "failed" || j.Error == nil || j.Error.Code != tc.code {
			t.Fatalf("%s → %s: %+v, want %s", tc.name, tc.to, j, tc.code)
		}
	}
}
