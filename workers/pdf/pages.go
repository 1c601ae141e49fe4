package pdf

import (
	"strconv"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// pageRange is an inclusive run of 1-based page numbers.
type pageRange struct{ from, thru int }

// codeBadPages is the job error code of a page selection that does not fit
// the document. The selection is well-formed (the API accepted it) but names
// pages the input does not have, which only the engine can tell: it is not a
// broken input, an unsupported format or a limit, so processor_error with a
// message naming the page is the closest contract code.
const codeBadPages = domain.CodeProcessorError

// parsePages parses a selection such as "1-3,5,8-" against a document of n
// pages. An empty selection is every page as one range.
func parsePages(sel string, n int) ([]pageRange, error) {
	sel = strings.TrimSpace(sel)
	if sel == "" {
		return []pageRange{{1, n}}, nil
	}
	var out []pageRange
	for _, part := range strings.Split(sel, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, domain.Failf(codeBadPages, "invalid page selection %q: empty part", sel)
		}
		var r pageRange
		var err error
		from, thru, isRange := strings.Cut(part, "-")
		if r.from, err = pageNumber(strings.TrimSpace(from), 1); err != nil {
			return nil, domain.Failf(codeBadPages, "invalid page selection %q: %q is not a page number", sel, part)
		}
		r.thru = r.from
		if isRange {
			if r.thru, err = pageNumber(strings.TrimSpace(thru), n); err != nil {
				return nil, domain.Failf(codeBadPages, "invalid page selection %q: %q is not a page range", sel, part)
			}
		}
		if r.from > r.thru {
			return nil, domain.Failf(codeBadPages, "invalid page selection %q: range %q runs backwards", sel, part)
		}
		if r.thru > n {
			return nil, domain.Failf(codeBadPages, "page selection %q names page %d, but the document has %d page(s)", sel, r.thru, n)
		}
		out = append(out, r)
	}
	return out, nil
}

// pageNumber parses a 1-based page number; empty is def ("-5", "3-").
func pageNumber(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, strconv.ErrSyntax
	}
	return v, nil
}

// flatten lists the pages of rs in order, duplicates kept.
func flatten(rs []pageRange) []int {
	var out []int
	for _, r := range rs {
		for p := r.from; p <= r.thru; p++ {
			out = append(out, p)
		}
	}
	return out
}
