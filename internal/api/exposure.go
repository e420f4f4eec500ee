package api

import (
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// What the API shows of workers and of secrets in URLs.

// ClientWorkerView is a worker as a client without the admin token sees it:
// what dispatch decides on and explains, nothing that locates or
// fingerprints the machine. Kept: id, type, status, skills (with their
// schemas), hot skills, prices, reputation, load and capacity, registration
// and last-seen times, installed artifacts (models: name, version, type;
// task requirements name them), and a hardware summary: devices' type,
// model and numeric properties (memory_gb), and the numbers, booleans and
// model names of resources.properties (cpu_cores, ram_gb, gpu_count,
// gpu_info). Left out: hostname, installed software and versions,
// device ids and UUIDs, device metrics, usage, the ids of the tasks it
// runs (other clients' tasks), string properties, artifact properties.
// The admin token (X-Admin-Token) shows WorkerView.
func ClientWorkerView(wi engine.WorkerInfo) protocol.WorkerInfo {
	v := WorkerView(wi)
	v.Hostname = ""
	v.InstalledSoftware = nil
	v.CurrentTasks = nil
	v.Usage = nil
	v.Resources = hardwareSummary(v.Resources)
	if len(v.InstalledArtifacts) > 0 {
		arts := make([]protocol.InstalledArtifact, len(v.InstalledArtifacts))
		for i, a := range v.InstalledArtifacts {
			arts[i] = protocol.InstalledArtifact{Name: a.Name, Version: a.Version, Type: a.Type}
		}
		v.InstalledArtifacts = arts
	}
	return v
}

// hardwareSummary keeps of a worker's resources what task requirements
// match on without identifying the machine: see ClientWorkerView.
func hardwareSummary(r *protocol.Resources) *protocol.Resources {
	if r == nil {
		return nil
	}
	out := &protocol.Resources{Properties: summaryProps(r.Properties)}
	for _, d := range r.Devices {
		out.Devices = append(out.Devices, protocol.HardwareDevice{Type: d.Type, Model: d.Model, Properties: summaryProps(d.Properties)})
	}
	if len(out.Properties) == 0 && len(out.Devices) == 0 {
		return nil
	}
	return out
}

// summaryProps keeps numbers, booleans and "model" strings, in nested
// objects too (gpu_info: {model, vram_gb}).
func summaryProps(in map[string]any) map[string]any {
	var out map[string]any
	for k, v := range in {
		switch x := v.(type) {
		case float64, float32, int, int64, int32, uint, uint64, uint32, bool:
		case string:
			if k != "model" {
				continue
			}
		case map[string]any:
			if v = summaryProps(x); v == nil {
				continue
			}
		default:
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	return out
}

// adminRequest reports whether r carries the admin token. A request
// without X-Admin-Token is not an admin's; one with a wrong token (or
// while the admin API is disabled) is answered 403 here and ok is false.
func (s *Server) adminRequest(w http.ResponseWriter, r *http.Request) (admin, ok bool) {
	if _, sent := r.Header[http.CanonicalHeaderKey(protocol.HeaderAdminToken)]; !sent {
		return false, true
	}
	if !s.admin(w, r) {
		return false, false
	}
	return true, true
}

// redacted replaces secrets in URLs the API shows and history stores.
const redacted = "redacted"

// RedactURL returns a URL fit to show and to store: user info (user:pass@)
// becomes "redacted@", the value of every query parameter whose name
// suggests a secret (token, secret, password, signature, key, auth,
// credential, session, sig, code and the like) becomes "redacted", and a
// fragment becomes "redacted". Other parameters keep their exact text. A
// URL that does not parse is replaced whole.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL, redacted)"
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	return u.String()
}

func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if secretParam(name) {
			parts[i] = strings.SplitN(p, "=", 2)[0] + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// secretParam reports whether a query parameter's name suggests that its
// value is a secret.
func secretParam(name string) bool {
	n := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(name))
	for _, word := range []string{"token", "secret", "password", "passwd", "signature", "credential", "auth", "session", "apikey", "accesskey", "privatekey"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	switch n {
	case "sig", "pwd", "pass", "code":
		return true
	}
	return strings.HasSuffix(n, "key")
}

// redactJobView redacts the webhook URL of a job view read back from
// history (written, perhaps, before views were redacted).
func redactJobView(v *protocol.Job) {
	if v != nil {
		v.WebhookURL = RedactURL(v.WebhookURL)
	}
}

// RedactEvent returns ev with the URL in its detail (a webhook attempt's
// "url") redacted, for the audit trail; ev itself is not changed, since the
// process's own observers share its detail.
func RedactEvent(ev engine.Event) engine.Event {
	if u, ok := ev.Detail["url"].(string); ok {
		ev.Detail = maps.Clone(ev.Detail)
		ev.Detail["url"] = RedactURL(u)
	}
	return ev
}

// redactHistoryEvent is RedactEvent for an event read back from history.
func redactHistoryEvent(ev *history.Event) {
	if u, ok := ev.Detail["url"].(string); ok {
		ev.Detail = maps.Clone(ev.Detail)
		ev.Detail["url"] = RedactURL(u)
	}
	if ev.Job != nil {
		j := *ev.Job
		redactJobView(&j)
		ev.Job = &j
	}
}
