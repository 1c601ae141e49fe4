package ocr

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
)

// join turns the per-page tesseract results into the one result file.
func (r *run) join(f workers.LocalFile, pages []page) ([]workers.Output, error) {
	name := baseName(f.Name) + r.format.suffix
	path := filepath.Join(r.in.WorkDir, name)
	var err error
	switch r.fmtName {
	case "txt":
		err = concat(path, pages, ".txt")
	case "hocr":
		err = r.mergeHOCR(path, pages, f.Name)
	case "pdf":
		err = mergePDF(path, pages)
	case "json":
		err = r.writeJSON(path, pages)
	}
	if err != nil {
		return nil, err
	}
	if max := r.in.Limits.MaxOutputBytes; max > 0 {
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("stat result: %w", err)
		}
		if st.Size() > max {
			return nil, domain.Failf(domain.CodeInputTooLarge, "the result would be %d bytes; the limit is %d", st.Size(), max)
		}
	}
	r.progress(100, "done")
	return []workers.Output{{Path: path, Name: name, MimeType: r.format.mime}}, nil
}

func concat(path string, pages []page, ext string) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create result: %w", err)
	}
	w := bufio.NewWriter(out)
	for _, p := range pages {
		b, err := os.ReadFile(p.base + ext)
		if err != nil {
			_ = out.Close()
			return fmt.Errorf("read page %d result: %w", p.n, err)
		}
		_, _ = w.Write(b)
	}
	if err := w.Flush(); err != nil {
		_ = out.Close()
		return fmt.Errorf("write result: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close result: %w", err)
	}
	return nil
}

var (
	// hocrID matches the page number in tesseract's element ids
	// (page_1, block_1_2, word_1_17, …): each run numbers its page 1.
	hocrID = regexp.MustCompile(`(id=['"][a-z_]+?)_1(['"_])`)
	// hocrImage is the image path in a page's title, which would show the
	// work directory.
	hocrImage  = regexp.MustCompile(`image "[^"]*"`)
	hocrPageNo = regexp.MustCompile(`ppageno \d+`)
)

// mergeHOCR writes one hOCR document with every page's ocr_page div.
func (r *run) mergeHOCR(path string, pages []page, input string) error {
	var head, tail string
	var body strings.Builder
	for i, p := range pages {
		b, err := os.ReadFile(p.base + ".hocr")
		if err != nil {
			return fmt.Errorf("read page %d hOCR: %w", p.n, err)
		}
		doc := string(b)
		start := strings.Index(doc, "<body>")
		end := strings.LastIndex(doc, "</body>")
		if start < 0 || end < start {
			return fmt.Errorf("page %d hOCR has no body", p.n)
		}
		if i == 0 {
			head, tail = doc[:start+len("<body>")], doc[end:]
		}
		part := doc[start+len("<body>") : end]
		part = hocrID.ReplaceAllString(part, "${1}_"+strconv.Itoa(p.n)+"${2}")
		label := input
		if len(pages) > 1 {
			label = fmt.Sprintf("%s page %d", input, p.n)
		}
		part = hocrImage.ReplaceAllLiteralString(part, "image "+strconv.Quote(label))
		part = hocrPageNo.ReplaceAllString(part, "ppageno "+strconv.Itoa(p.n-1))
		body.WriteString(part)
	}
	if err := os.WriteFile(path, []byte(head+body.String()+tail), 0o600); err != nil {
		return fmt.Errorf("write hOCR: %w", err)
	}
	return nil
}

func mergePDF(path string, pages []page) error {
	if len(pages) == 1 {
		if err := os.Rename(pages[0].base+".pdf", path); err != nil {
			return fmt.Errorf("move searchable PDF: %w", err)
		}
		return nil
	}
	files := make([]string, len(pages))
	for i, p := range pages {
		files[i] = p.base + ".pdf"
	}
	conf := model.NewDefaultConfiguration()
	conf.CreateBookmarks = false
	if err := api.MergeCreateFile(files, path, false, conf); err != nil {
		return fmt.Errorf("merge searchable pages: %w", err)
	}
	return nil
}

// Result is the JSON result: every page with its recognised words.
type Result struct {
	Language string       `json:"language"`
	DPI      int          `json:"dpi"`
	Pages    []PageResult `json:"pages"`
}

// PageResult is one page: its size in pixels, its text line by line and its
// words.
type PageResult struct {
	Page   int `json:"page"`
	Width  int `json:"width"`
	Height int `json:"height"`
	// MeanConfidence is the average word confidence (0–100).
	MeanConfidence float64 `json:"mean_confidence"`
	Text           string  `json:"text"`
	Words          []Word  `json:"words"`
}

// Word is one recognised word with its bounding box in page pixels (origin
// top left) and tesseract's confidence (0–100).
type Word struct {
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
	Left       int     `json:"left"`
	Top        int     `json:"top"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Block      int     `json:"block"`
	Paragraph  int     `json:"paragraph"`
	Line       int     `json:"line"`
}

func (r *run) writeJSON(path string, pages []page) error {
	res := Result{Language: r.lang, DPI: r.dpi, Pages: make([]PageResult, 0, len(pages))}
	for _, p := range pages {
		pr, err := parseTSV(p.base+".tsv", p.n)
		if err != nil {
			return err
		}
		res.Pages = append(res.Pages, pr)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode OCR JSON: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write OCR JSON: %w", err)
	}
	return nil
}

// parseTSV reads tesseract's TSV: level, page, block, paragraph, line,
// word, left, top, width, height, conf, text.
func parseTSV(path string, n int) (PageResult, error) {
	pr := PageResult{Page: n, Words: []Word{}}
	fh, err := os.Open(path)
	if err != nil {
		return pr, fmt.Errorf("read page %d TSV: %w", n, err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var text strings.Builder
	lastLine := [3]int{-1, -1, -1}
	var confSum float64
	for first := true; sc.Scan(); first = false {
		cols := strings.Split(sc.Text(), "\t")
		if first || len(cols) < 11 {
			continue
		}
		num := make([]int, 10)
		for i := 0; i < 10; i++ {
			num[i], _ = strconv.Atoi(cols[i])
		}
		switch num[0] {
		case 1:
			pr.Width, pr.Height = num[8], num[9]
		case 5:
			if len(cols) < 12 || strings.TrimSpace(cols[11]) == "" {
				continue
			}
			conf, _ := strconv.ParseFloat(cols[10], 64)
			w := Word{Text: cols[11], Confidence: conf, Left: num[6], Top: num[7], Width: num[8], Height: num[9],
				Block: num[2], Paragraph: num[3], Line: num[4]}
			line := [3]int{w.Block, w.Paragraph, w.Line}
			switch {
			case len(pr.Words) == 0:
			case line != lastLine:
				text.WriteByte('\n')
			default:
				text.WriteByte(' ')
			}
			lastLine = line
			text.WriteString(w.Text)
			confSum += conf
			pr.Words = append(pr.Words, w)
		}
	}
	if err := sc.Err(); err != nil {
		return pr, fmt.Errorf("read page %d TSV: %w", n, err)
	}
	if len(pr.Words) > 0 {
		pr.MeanConfidence = float64(int(confSum/float64(len(pr.Words))*100)) / 100
	}
	pr.Text = text.String()
	return pr, nil
}
