// Package dispatch decides which worker gets a task: filters that every
// candidate must pass (skill, liveness, capacity, resource requirements,
// price, reputation) and then a strategy that picks one of them.
package dispatch

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Requirement keys with a meaning of their own. Any other key is matched
// against the worker's resource properties (cpu_cores, ram_gb, gpu_info, ...).
const (
	reqDevices    = "devices"
	reqProperties = "properties"
	reqSoftware   = "installed_software"
	reqArtifacts  = "installed_artifacts"
	reqModels     = "installed_models" // legacy name of installed_artifacts
	reqExtra      = "extra"
)

// Requirements reports whether worker w meets req, and if not, why (a short
// phrase such as "gpu_info.vram_gb below 4").
func Requirements(w *store.Worker, req map[string]any) (bool, string) {
	return requirements(w, req, true)
}

// requirements checks req against w; with explain unset it skips building
// the reason, which is the costly part when thousands of workers are
// filtered.
func requirements(w *store.Worker, req map[string]any, explain bool) (bool, string) {
	for key, want := range req {
		var ok bool
		var why string
		switch key {
		case reqDevices:
			ok, why = matchDevices(w, want)
		case reqProperties:
			m, isMap := want.(map[string]any)
			if !isMap {
				return false, "requirement properties must be an object"
			}
			ok, why = requirements(w, m, explain)
		case reqSoftware:
			ok, why = matchSoftware(w, want)
		case reqArtifacts, reqModels:
			ok, why = matchArtifacts(w, want)
		case reqExtra:
			var extra map[string]any
			if w.Capabilities != nil {
				extra = w.Capabilities.Extra
			}
			ok, why = matchValue("extra", want, extra, true, explain)
		case "gpu_info":
			if have, found := workerProperty(w, key); found || w.Resources == nil {
				ok, why = matchValue(key, want, have, found, explain)
			} else {
				ok, why = matchGPUInfo(w, want, explain)
			}
		default:
			have, found := workerProperty(w, key)
			ok, why = matchValue(key, want, have, found, explain)
		}
		if !ok {
			if explain && len(req) > 1 {
				// Report the first failing key in a stable order.
				for _, k := range sortedKeys(req) {
					if ok, why := requirements(w, map[string]any{k: req[k]}, true); !ok {
						return false, why
					}
				}
			}
			return false, why
		}
	}
	return true, ""
}

// workerProperty reads one of the worker's resource properties.
func workerProperty(w *store.Worker, key string) (any, bool) {
	if w.Resources == nil {
		return nil, false
	}
	v, ok := w.Resources.Properties[key]
	return v, ok
}

// matchGPUInfo matches a gpu_info requirement ({model, vram_gb}) against the
// worker's first GPU device, for workers that report devices rather than
// gpu_info. It reads the device in place: building a gpu_info map per
// worker was the bulk of the cost of filtering a large pool.
func matchGPUInfo(w *store.Worker, want any, explain bool) (bool, string) {
	for _, d := range w.Resources.Devices {
		if !strings.EqualFold(d.Type, "gpu") {
			continue
		}
		req, ok := want.(map[string]any)
		if !ok {
			return matchValue("gpu_info", want, map[string]any{"model": d.Model}, true, explain)
		}
		for k, v := range req {
			var have any
			found := true
			switch k {
			case "model":
				have = d.Model
			case "vram_gb":
				have, found = d.Properties["memory_gb"]
			default:
				have, found = d.Properties[k]
			}
			path := k
			if explain {
				path = "gpu_info." + k
			}
			if ok, why := matchValue(path, v, have, found, explain); !ok {
				return false, why
			}
		}
		return true, ""
	}
	if explain {
		return false, "missing gpu_info"
	}
	return false, ""
}

// matchValue compares one required value with the worker's: numbers must be
// at least the requirement, objects match key by key, a required list
// accepts a worker scalar in it or a worker list containing all of it, a
// required scalar matches a worker list containing it, anything else must be
// equal ("model" strings match case-insensitively as substrings).
func matchValue(path string, want, have any, found, explain bool) (bool, string) {
	fail := func(format string, args ...any) (bool, string) {
		if !explain {
			return false, ""
		}
		return false, fmt.Sprintf(format, args...)
	}
	if !found || have == nil {
		return fail("missing %s", path)
	}
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return fail("%s: worker value is not an object", path)
		}
		for k, wv := range w {
			hv, hfound := h[k]
			sub := k
			if explain {
				sub = path + "." + k
			}
			if ok, why := matchValue(sub, wv, hv, hfound, explain); !ok {
				return false, why
			}
		}
		return true, ""
	case []any:
		if hl, ok := have.([]any); ok {
			for _, item := range w {
				if !containsValue(hl, item) {
					return fail("%s lacks %v", path, item)
				}
			}
			return true, ""
		}
		if containsValue(w, have) {
			return true, ""
		}
		return fail("%s %v not in %v", path, have, w)
	}
	if wn, ok := toFloat(want); ok {
		hn, ok := toFloat(have)
		if !ok {
			return fail("%s: worker value %v is not a number", path, have)
		}
		if hn < wn {
			return fail("%s below %v", path, want)
		}
		return true, ""
	}
	if hl, ok := have.([]any); ok {
		if containsValue(hl, want) {
			return true, ""
		}
		return fail("%s lacks %v", path, want)
	}
	if ws, ok := want.(string); ok && (path == "model" || strings.HasSuffix(path, ".model")) {
		if hs, ok := have.(string); ok && strings.Contains(strings.ToLower(hs), strings.ToLower(ws)) {
			return true, ""
		}
		return fail("%s %v is not %q", path, have, ws)
	}
	if !equalValues(want, have) {
		return fail("%s is %v, not %v", path, have, want)
	}
	return true, ""
}

// equalValues compares JSON values, numbers by value whatever their Go type.
func equalValues(a, b any) bool {
	if an, ok := toFloat(a); ok {
		bn, ok := toFloat(b)
		return ok && an == bn
	}
	if as, ok := a.(string); ok {
		bs, ok := b.(string)
		return ok && as == bs
	}
	return reflect.DeepEqual(a, b)
}

func containsValue(list []any, v any) bool {
	for _, item := range list {
		if equalValues(item, v) {
			return true
		}
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case interface{ Float64() (float64, error) }:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// matchDevices needs every required device to be matched by a distinct
// worker device of the same type.
func matchDevices(w *store.Worker, want any) (bool, string) {
	reqs, ok := want.([]any)
	if !ok {
		return false, "requirement devices must be a list"
	}
	var devices []map[string]any
	if w.Resources != nil {
		for _, d := range w.Resources.Devices {
			m := map[string]any{"type": d.Type, "model": d.Model, "id": d.ID}
			for k, v := range d.Properties {
				m[k] = v
			}
			devices = append(devices, m)
		}
	}
	used := make([]bool, len(devices))
	for _, r := range reqs {
		rm, ok := r.(map[string]any)
		if !ok {
			return false, "each required device must be an object"
		}
		flat := map[string]any{}
		for k, v := range rm {
			if k == "properties" {
				if pm, ok := v.(map[string]any); ok {
					for pk, pv := range pm {
						flat[pk] = pv
					}
					continue
				}
			}
			if k == "id" && v == "" {
				continue
			}
			flat[k] = v
		}
		matched := false
		for i, d := range devices {
			if used[i] {
				continue
			}
			if ok, _ := matchValue("device", flat, d, true, false); ok {
				used[i], matched = true, true
				break
			}
		}
		if !matched {
			return false, fmt.Sprintf("no free device matching %v", rm)
		}
	}
	return true, ""
}

func matchSoftware(w *store.Worker, want any) (bool, string) {
	req, ok := want.(map[string]any)
	if !ok {
		return false, "requirement installed_software must be an object"
	}
	for _, name := range sortedKeys(req) {
		have, found := w.InstalledSoftware[name]
		if !found {
			return false, "missing software " + name
		}
		if v := fmt.Sprint(req[name]); v != "any" && v != "" && v != have {
			return false, fmt.Sprintf("software %s is %s, not %s", name, have, v)
		}
	}
	return true, ""
}

func matchArtifacts(w *store.Worker, want any) (bool, string) {
	reqs, ok := want.([]any)
	if !ok {
		return false, "requirement installed_artifacts must be a list"
	}
	for _, r := range reqs {
		name, version := "", ""
		switch x := r.(type) {
		case string:
			name = x
		case map[string]any:
			name, _ = x["name"].(string)
			version, _ = x["version"].(string)
		}
		if name == "" {
			return false, "an artifact requirement has no name"
		}
		found := false
		for _, a := range w.InstalledArtifacts {
			if a.Name == name && (version == "" || version == "unknown" || version == "any" || a.Version == version) {
				found = true
				break
			}
		}
		if !found {
			return false, "missing artifact " + name
		}
	}
	return true, ""
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Describe renders requirements for people: "gpu_info.vram_gb >= 4".
func Describe(req map[string]any) string {
	var parts []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				p := k
				if prefix != "" && prefix != reqProperties {
					p = prefix + "." + k
				}
				walk(p, x[k])
			}
		default:
			if _, isNum := toFloat(x); isNum {
				parts = append(parts, fmt.Sprintf("%s >= %v", prefix, x))
			} else {
				parts = append(parts, fmt.Sprintf("%s = %v", prefix, x))
			}
		}
	}
	walk("", req)
	slices.Sort(parts)
	return strings.Join(parts, " and ")
}

var inf = math.Inf(1)
