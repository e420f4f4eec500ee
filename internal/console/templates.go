package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// pageNames are the templates/<name>.html files; each is parsed with
// layout.html.
var pageNames = []string{"login", "jobs", "job", "confirm", "workers", "worker", "queues", "schedules", "notfound", "message", "quarantine"}

// partials are templates/<name>.html files of fragments that pages share.
var partials = []string{"templates/retry.html"}

func parsePages() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, append([]string{"templates/layout.html", "templates/" + name + ".html"}, partials...)...)
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"statusClass": func(s protocol.JobStatus) string {
		switch {
		case s == protocol.StatusFinished:
			return "ok"
		case s == protocol.StatusCancelled:
			return "muted"
		case s.Terminal():
			return "bad"
		case s == protocol.StatusWaitingForHuman:
			return "warn"
		default:
			return "run"
		}
	},
	"terminal": func(s protocol.JobStatus) bool { return s.Terminal() },
	// retryable takes a status or a filter's status string.
	"retryable": func(s any) bool { return engine.Retryable(protocol.JobStatus(fmt.Sprint(s))) },
	"time":      fmtTime,
	"timep": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return fmtTime(*t)
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t).Round(time.Second)
		if d < 0 {
			d = 0
		}
		return d.String() + " ago"
	},
	"pct": func(f float64) int { return int(math.Round(f * 100)) },
	"json": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprintf("(%v)", err)
		}
		return string(b)
	},
	"short": func(id string) string {
		if len(id) > 8 {
			return id[:8]
		}
		return id
	},
	"seconds": func(f float64) string {
		return (time.Duration(f * float64(time.Second))).Round(time.Millisecond).String()
	},
	"detail": detailText,
	"price": func(m map[string]float64, skill string) string {
		if v, ok := m[skill]; ok {
			return fmt.Sprintf("%g", v)
		}
		return ""
	},
	"hardware": hardwareText,
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// detailText is an event's detail as one line of key=value, sorted.
func detailText(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k, v := range d {
		if v == nil || v == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := d[k]
		switch x := v.(type) {
		case string:
			parts = append(parts, k+"="+x)
		case float64:
			parts = append(parts, fmt.Sprintf("%s=%g", k, x))
		default:
			b, _ := json.Marshal(x)
			parts = append(parts, k+"="+string(b))
		}
	}
	return strings.Join(parts, " ")
}

// hardwareText summarises a worker's devices ("gpu NVIDIA H100 80GB") and
// its numeric properties.
func hardwareText(r *protocol.Resources) string {
	if r == nil {
		return ""
	}
	var parts []string
	for _, d := range r.Devices {
		s := strings.TrimSpace(d.Type + " " + d.Model)
		for _, k := range []string{"vram_gb", "memory_gb", "vram"} {
			if v, ok := d.Properties[k]; ok {
				s += fmt.Sprintf(" %v GB", v)
				break
			}
		}
		parts = append(parts, s)
	}
	keys := make([]string, 0, len(r.Properties))
	for k, v := range r.Properties {
		switch v.(type) {
		case float64, int, int64:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %v", k, r.Properties[k]))
	}
	return strings.Join(parts, ", ")
}
