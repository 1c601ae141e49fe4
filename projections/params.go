package projections

import (
	"math"

	"github.com/convilyn/turbolane/domain"
)

// normaliseParams converts JSON-decoded params (numbers as float64, arrays as
// []any) back into the types domain.ValidateParams produces, guided by the
// processor's spec: integer parameters as int, number parameters as
// float64, file id lists as []string. Parameters the spec does not know
// (written by an older or newer version) are left as JSON decoded them.
// The map is modified in place and returned.
func normaliseParams(t domain.ProcessorType, p map[string]any) map[string]any {
	if len(p) == 0 {
		return p
	}
	spec, ok := domain.LookupSpec(t)
	if !ok {
		return p
	}
	for _, ps := range spec.Params {
		v, present := p[ps.Name]
		if !present {
			continue
		}
		switch ps.Kind {
		case domain.ParamInt:
			if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				p[ps.Name] = int(f)
			}
		case domain.ParamFileIDList:
			if list, ok := v.([]any); ok {
				ids := make([]string, 0, len(list))
				for _, x := range list {
					s, ok := x.(string)
					if !ok {
						ids = nil
						break
					}
					ids = append(ids, s)
				}
				if ids != nil {
					p[ps.Name] = ids
				}
			}
		}
	}
	return p
}
