package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Times are shown in UTC, with a relative hint; numbers with thousands
// separators. These are the templates' functions.
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": c.assetURL,
		"utc":   formatUTC,
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":   func(t time.Time) string { return relative(c.now(), t) },
		"dur":   formatDuration,
		"num":   formatNumber,
		"rowPage": func(d any) page {
			return page{Data: d}
		},
		"scopes": func(s []pipeline.Scope) string {
			var out []string
			for _, x := range s {
				out = append(out, string(x))
			}
			return strings.Join(out, ", ")
		},
		"lower":      strings.ToLower,
		"attemptDur": attemptDuration,
		"timeOf":     func(t *time.Time) time.Time { return *t },
		"risk": func(f *float64) string {
			if f == nil {
				return "—"
			}
			return strconv.FormatFloat(*f, 'f', -1, 64)
		},
		"deref": func(b *bool) string {
			if b == nil {
				return "—"
			}
			return strconv.FormatBool(*b)
		},
		"derefInt": func(i *int) string {
			if i == nil {
				return "—"
			}
			return strconv.Itoa(*i)
		},
		"truncate": func(n int, s string) string {
			if r := []rune(s); len(r) > n {
				return string(r[:n]) + "…"
			}
			return s
		},
		"rate": func(f float64) string {
			if f == 0 {
				return "0"
			}
			if f < 10 {
				return strconv.FormatFloat(f, 'f', 1, 64)
			}
			return formatInt(int64(math.Round(f)))
		},
	}
}

func formatUTC(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// relative is a hint like "3 min ago" or "in 2 h".
func relative(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, ""
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	if suffix == "" {
		return "in " + s
	}
	return s + suffix
}

// formatDuration is a short human duration: "850 ms", "2.4 s", "3 min 5 s".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d days %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// formatInt writes n with thousands separators (1,234,567).
func formatInt[T int | int64 | uint64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatNumber is formatInt for any integer a template holds.
func formatNumber(v any) string {
	switch n := v.(type) {
	case int:
		return formatInt(n)
	case int64:
		return formatInt(n)
	case uint64:
		return formatInt(n)
	case uint32:
		return formatInt(uint64(n))
	case int32:
		return formatInt(int64(n))
	}
	return fmt.Sprint(v)
}
