package domain

import (
	"fmt"
	"strings"
)

// Plan names a pricing plan; plans limit file size only.
type Plan string

// The four plans of the contract.
const (
	PlanAnonymous Plan = "anonymous"
	PlanFree      Plan = "free"
	PlanPro       Plan = "pro"
	PlanBusiness  Plan = "business"
)

// ParsePlan validates a plan name; anonymous is not a plan a key can have.
func ParsePlan(s string) (Plan, error) {
	switch p := Plan(s); p {
	case PlanFree, PlanPro, PlanBusiness:
		return p, nil
	}
	return "", Validationf("plan must be one of free, pro, business; got %q", s)
}

const mib = 1 << 20

// PlanLimits maps each plan to its maximum file size in bytes.
type PlanLimits map[Plan]int64

// DefaultPlanLimits are the contract's defaults.
func DefaultPlanLimits() PlanLimits {
	return PlanLimits{PlanAnonymous: 10 * mib, PlanFree: 50 * mib, PlanPro: 500 * mib, PlanBusiness: 2048 * mib}
}

// MaxFileSize returns the limit of plan p (anonymous for an unknown plan).
func (l PlanLimits) MaxFileSize(p Plan) int64 {
	if n, ok := l[p]; ok {
		return n
	}
	return l[PlanAnonymous]
}

// Check returns ErrFileTooLarge when size exceeds the limit of plan p.
func (l PlanLimits) Check(p Plan, size int64) error {
	if max := l.MaxFileSize(p); size > max {
		return ErrFileTooLarge.WithMessage("the file is %d bytes; the %s plan allows at most %d bytes (%s)", size, p, max, HumanBytes(max))
	}
	return nil
}

// ParsePlanLimits reads "anonymous=10MiB,free=50MiB" style overrides.
func ParsePlanLimits(s string) (PlanLimits, error) {
	l := DefaultPlanLimits()
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("plan limit %q: want plan=size", part)
		}
		n, err := ParseBytes(v)
		if err != nil {
			return nil, fmt.Errorf("plan limit %q: %w", part, err)
		}
		l[Plan(k)] = n
	}
	return l, nil
}

// ParseBytes reads sizes such as 1048576, 10MiB, 2GiB, 500MB.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.m
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}

// HumanBytes formats n in binary units.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
