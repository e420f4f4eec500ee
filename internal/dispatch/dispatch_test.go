package dispatch

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// w builds a worker: skill prices, resource properties and devices.
func w(id string, prices map[string]float64, props map[string]any, devices ...protocol.HardwareDevice) *store.Worker {
	wk := &store.Worker{ID: id, Status: protocol.WorkerIdle, Capabilities: &protocol.Capabilities{CostPerSkill: prices},
		Resources: &protocol.Resources{Properties: props, Devices: devices}}
	for s := range prices {
		wk.Skills = append(wk.Skills, protocol.SkillInfo{Name: s})
	}
	return wk
}

func c(wk *store.Worker, rep float64, load int) Candidate {
	return Candidate{Worker: wk, Reputation: rep, Load: load}
}

var policy = Policy{MinReputation: 0.3, SoftLimit: 3}

func gpu(model string, gb float64) protocol.HardwareDevice {
	return protocol.HardwareDevice{Type: "gpu", Model: model, Properties: map[string]any{"memory_gb": gb}}
}

func TestRequirements(t *testing.T) {
	t.Parallel()
	big := w("big", nil, map[string]any{"cpu_cores": 16.0, "ram_gb": 64.0, "codecs": []any{"h264", "hevc"}, "region": "eu"}, gpu("NVIDIA T4", 16))
	big.InstalledSoftware = map[string]string{"ffmpeg": "5.1"}
	big.InstalledArtifacts = []protocol.InstalledArtifact{{Name: "stable-diffusion-1.5", Version: "1.5"}}
	big.Capabilities.Extra = map[string]any{"websockets": true}
	small := w("small", nil, map[string]any{"cpu_cores": 2.0, "ram_gb": 8.0})
	for _, tc := range []struct {
		name string
		req  map[string]any
		wk   *store.Worker
		ok   bool
		why  string
	}{
		{"nested numeric from a GPU device", map[string]any{"gpu_info": map[string]any{"vram_gb": 4}}, big, true, ""},
		{"nested numeric too small", map[string]any{"gpu_info": map[string]any{"vram_gb": 24}}, big, false, "gpu_info.vram_gb below 24"},
		{"missing nested field", map[string]any{"gpu_info": map[string]any{"vram_gb": 4}}, small, false, "missing gpu_info"},
		{"numeric greater or equal", map[string]any{"ram_gb": 64}, big, true, ""},
		{"numeric smaller", map[string]any{"ram_gb": 32}, small, false, "ram_gb below 32"},
		{"string equality", map[string]any{"region": "eu"}, big, true, ""},
		{"string mismatch", map[string]any{"region": "us"}, big, false, "region is eu, not us"},
		{"list containment", map[string]any{"codecs": []any{"hevc"}}, big, true, ""},
		{"list not contained", map[string]any{"codecs": []any{"av1"}}, big, false, "codecs lacks av1"},
		{"scalar in worker list", map[string]any{"codecs": "h264"}, big, true, ""},
		{"worker scalar in required list", map[string]any{"region": []any{"eu", "us"}}, big, true, ""},
		{"wrong type in requirement", map[string]any{"ram_gb": "lots"}, big, false, "ram_gb is 64, not lots"},
		{"worker value not a number", map[string]any{"region": 3}, big, false, "region: worker value eu is not a number"},
		{"software version", map[string]any{"installed_software": map[string]any{"ffmpeg": "5.1"}}, big, true, ""},
		{"software any version", map[string]any{"installed_software": map[string]any{"ffmpeg": "any"}}, big, true, ""},
		{"software wrong version", map[string]any{"installed_software": map[string]any{"ffmpeg": "6.0"}}, big, false, "software ffmpeg is 5.1, not 6.0"},
		{"software missing", map[string]any{"installed_software": map[string]any{"sox": "any"}}, big, false, "missing software sox"},
		{"model by name", map[string]any{"installed_models": []any{"stable-diffusion-1.5"}}, big, true, ""},
		{"model with version", map[string]any{"installed_artifacts": []any{map[string]any{"name": "stable-diffusion-1.5", "version": "2.0"}}}, big, false, "missing artifact stable-diffusion-1.5"},
		{"device by model substring", map[string]any{"devices": []any{map[string]any{"type": "gpu", "model": "t4", "properties": map[string]any{"memory_gb": 8}}}}, big, true, ""},
		{"two devices needed", map[string]any{"devices": []any{map[string]any{"type": "gpu"}, map[string]any{"type": "gpu"}}}, big, false, "no free device"},
		{"extra capability", map[string]any{"extra": map[string]any{"websockets": true}}, big, true, ""},
		{"rxon properties form", map[string]any{"properties": map[string]any{"cpu_cores": 8}}, big, true, ""},
		{"no resources at all", map[string]any{"cpu_cores": 1}, &store.Worker{ID: "bare"}, false, "missing cpu_cores"},
		{"no requirements", nil, small, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := Requirements(tc.wk, tc.req)
			if ok != tc.ok || (tc.why != "" && !strings.Contains(why, tc.why)) {
				t.Fatalf("Requirements = %v %q, want %v %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestCheckFilters(t *testing.T) {
	t.Parallel()
	base := func() *store.Worker { return w("w", map[string]float64{"x": 0.5}, nil) }
	busy := base()
	busy.Status = protocol.WorkerBusy
	full := base()
	full.MaxConcurrent = 2
	reportedFull := base() // its last heartbeat said full
	reportedFull.Status, reportedFull.MaxConcurrent = protocol.WorkerFull, 2
	fullNoLimit := base()
	fullNoLimit.Status = protocol.WorkerFull
	limited := base()
	limited.AvailableSkills = []string{"other"}
	statuses := base()
	statuses.Skills[0].OutputStatus = []string{"success", "failure"}
	free := w("free", map[string]float64{}, nil)
	free.Skills = []protocol.SkillInfo{{Name: "x"}}
	for _, tc := range []struct {
		name string
		req  Request
		cand Candidate
		ok   bool
		why  string
	}{
		{"eligible", Request{Type: "x"}, c(base(), 1, 0), true, ""},
		{"no skill", Request{Type: "y"}, c(base(), 1, 0), false, "no skill y"},
		{"not idle", Request{Type: "x"}, c(busy, 1, 0), false, "busy"},
		{"at capacity", Request{Type: "x"}, c(full, 1, 2), false, "at capacity"},
		{"under capacity", Request{Type: "x"}, c(full, 1, 1), true, ""},
		{"reported full, still full", Request{Type: "x"}, c(reportedFull, 1, 2), false, "full"},
		{"reported full, a slot freed since", Request{Type: "x"}, c(reportedFull, 1, 1), true, ""},
		{"reported full, limit unknown", Request{Type: "x"}, c(fullNoLimit, 1, 0), false, "full"},
		{"skill at its limit", Request{Type: "x"}, c(limited, 1, 0), false, "skill x at its limit"},
		{"price within max cost", Request{Type: "x", MaxCost: 0.5}, c(base(), 1, 0), true, ""},
		{"price above max cost", Request{Type: "x", MaxCost: 0.4}, c(base(), 1, 0), false, "above max cost"},
		{"no price under max cost", Request{Type: "x", MaxCost: 1}, c(free, 1, 0), false, "no price for x"},
		{"reputation below floor", Request{Type: "x"}, c(base(), 0.29, 0), false, "reputation 0.290 below 0.300"},
		{"custom status not returned", Request{Type: "x", Statuses: []string{"success", "needs_review"}}, c(statuses, 1, 0), false, "does not return status needs_review"},
		{"custom status, no declared list", Request{Type: "x", Statuses: []string{"needs_review"}}, c(base(), 1, 0), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := Check(tc.req, tc.cand, policy)
			if ok != tc.ok || (tc.why != "" && !strings.Contains(why, tc.why)) {
				t.Fatalf("Check = %v %q, want %v %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestFilterExplainsAndPrefersOtherWorkersOnRetry(t *testing.T) {
	t.Parallel()
	pool := []Candidate{c(w("a", map[string]float64{"x": 1}, nil), 1, 0), c(w("b", map[string]float64{"x": 2}, nil), 1, 0)}
	got, _ := Filter(Request{Type: "x", Exclude: []string{"a"}}, pool, policy)
	if len(got) != 1 || got[0].Worker.ID != "b" {
		t.Fatalf("retry pool %v", ids(got))
	}
	got, _ = Filter(Request{Type: "x", Exclude: []string{"a", "b"}}, pool, policy)
	if len(got) != 2 {
		t.Fatalf("when every worker failed the task, all stay eligible: %v", ids(got))
	}
	_, why := Filter(Request{Type: "transcode", Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 4}}}, pool, policy)
	if why != "no worker with skill transcode and gpu_info.vram_gb >= 4 is registered" {
		t.Fatalf("reason %q", why)
	}
	_, why = Filter(Request{Type: "x", MaxCost: 0.5}, pool, policy)
	if !strings.HasPrefix(why, "no worker with skill x at a price up to 0.5 is available (a: price 1 above max cost 0.5; b: price 2") {
		t.Fatalf("reason %q", why)
	}
}

func ids(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Worker.ID)
	}
	return out
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	hot := w("hot", map[string]float64{"x": 0.3}, nil)
	hot.HotSkills = []string{"x"}
	cheap := w("cheap", map[string]float64{"x": 0.1}, nil)
	cheapTwin := w("cheap2", map[string]float64{"x": 0.1}, nil)
	dear := w("dear", map[string]float64{"x": 0.2}, nil)
	unpriced := w("unpriced", map[string]float64{}, nil)
	unpriced.Skills = []protocol.SkillInfo{{Name: "x"}}
	counter := int64(0)
	next := func() (int64, error) { counter++; return counter, nil }
	for _, tc := range []struct {
		name     string
		strategy blueprint.Strategy
		pool     []Candidate
		want     string
	}{
		{"default prefers hot", blueprint.Default, []Candidate{c(cheap, 1, 0), c(hot, 1, 0)}, "hot"},
		{"default falls back to cheapest", blueprint.Default, []Candidate{c(dear, 1, 0), c(cheap, 1, 0)}, "cheap"},
		{"default tie goes to reputation", blueprint.Default, []Candidate{c(cheap, 0.8, 0), c(cheapTwin, 0.9, 0)}, "cheap2"},
		{"cheapest", blueprint.Cheapest, []Candidate{c(hot, 1, 0), c(dear, 1, 0), c(cheap, 0.5, 9)}, "cheap"},
		{"cheapest tie by reputation then load", blueprint.Cheapest, []Candidate{c(cheap, 1, 3), c(cheapTwin, 1, 1)}, "cheap2"},
		{"cheapest tie fully equal goes to id", blueprint.Cheapest, []Candidate{c(cheapTwin, 1, 0), c(cheap, 1, 0)}, "cheap"},
		{"unpriced never cheapest", blueprint.Cheapest, []Candidate{c(unpriced, 1, 0), c(dear, 1, 0)}, "dear"},
		{"expensive-only pool still picks", blueprint.Cheapest, []Candidate{c(unpriced, 1, 0)}, "unpriced"},
		{"best value trades price for reputation", blueprint.BestValue, []Candidate{c(cheap, 0.4, 0), c(dear, 1, 0)}, "dear"}, // 0.25 vs 0.2
		{"best value keeps the cheap reliable", blueprint.BestValue, []Candidate{c(cheap, 0.6, 0), c(dear, 1, 0)}, "cheap"},   // 0.167 vs 0.2
		{"best value with zero reputation", blueprint.BestValue, []Candidate{c(cheap, 0, 0), c(unpriced, 1, 0)}, "cheap"},     // both +Inf: cheaper wins the tie
		{"least connections", blueprint.LeastConnections, []Candidate{c(cheap, 1, 5), c(dear, 1, 1), c(hot, 1, 2)}, "dear"},
		{"overflow takes the cheapest with room", blueprint.Overflow, []Candidate{c(cheap, 1, 2), c(dear, 1, 0)}, "cheap"},
		{"overflow spills", blueprint.Overflow, []Candidate{c(cheap, 1, 3), c(dear, 1, 0)}, "dear"},
		{"overflow all full: least loaded", blueprint.Overflow, []Candidate{c(cheap, 1, 5), c(dear, 1, 4)}, "dear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why, err := Choose(tc.strategy, Request{Type: "x"}, tc.pool, policy, next)
			if err != nil || got.Worker.ID != tc.want || why == "" {
				t.Fatalf("chose %s (%q, %v), want %s", got.Worker.ID, why, err, tc.want)
			}
		})
	}
}

func TestRoundRobinIsEvenAndStable(t *testing.T) {
	t.Parallel()
	pool := []Candidate{c(w("c", map[string]float64{"x": 1}, nil), 1, 0), c(w("a", map[string]float64{"x": 1}, nil), 1, 0), c(w("b", map[string]float64{"x": 1}, nil), 1, 0)}
	counter := int64(0)
	next := func() (int64, error) { counter++; return counter, nil }
	counts := map[string]int{}
	var order []string
	for range 30 {
		got, _, _ := Choose(blueprint.RoundRobin, Request{Type: "x"}, pool, policy, next)
		counts[got.Worker.ID]++
		order = append(order, got.Worker.ID)
	}
	if counts["a"] != 10 || counts["b"] != 10 || counts["c"] != 10 {
		t.Fatalf("round robin counts %v", counts)
	}
	if strings.Join(order[:6], "") != "bcabca" {
		t.Fatalf("order %v: must cycle in id order whatever the input order", order[:6])
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	if v := Value(c(w("a", map[string]float64{"x": 0.5}, nil), 0.25, 0), "x"); v != 2 {
		t.Fatalf("value %v", v)
	}
}

// TestDefaultHotFallsBack: the default strategy prefers a worker with the
// skill hot, but only among eligible workers: a hot worker that is full,
// at its per-skill limit, busy, below the reputation floor or short of the
// requirements gives way, to another hot worker first.
func TestDefaultHotFallsBack(t *testing.T) {
	t.Parallel()
	hot := func(id string, price float64) *store.Worker {
		wk := w(id, map[string]float64{"x": price}, map[string]any{"cpu_cores": 2.0})
		wk.HotSkills = []string{"x"}
		wk.MaxConcurrent = 1
		return wk
	}
	cold := c(w("cold", map[string]float64{"x": 0.1}, map[string]any{"cpu_cores": 16.0}), 1, 0)
	limited := hot("hot", 0.3)
	limited.AvailableSkills = []string{"y"}
	busy := hot("hot", 0.3)
	busy.Status = protocol.WorkerBusy
	for _, tc := range []struct {
		name    string
		req     Request
		pool    []Candidate
		want    string
		hotPick bool // the reason says the skill was hot
	}{
		{"hot with room beats a cheaper cold worker", Request{Type: "x"}, []Candidate{cold, c(hot("hot", 0.3), 1, 0)}, "hot", true},
		{"hot at capacity falls back to cold", Request{Type: "x"}, []Candidate{cold, c(hot("hot", 0.3), 1, 1)}, "cold", false},
		{"hot at its per-skill limit", Request{Type: "x"}, []Candidate{cold, c(limited, 1, 0)}, "cold", false},
		{"hot but busy", Request{Type: "x"}, []Candidate{cold, c(busy, 1, 0)}, "cold", false},
		{"hot below the reputation floor", Request{Type: "x"}, []Candidate{cold, c(hot("hot", 0.3), 0.1, 0)}, "cold", false},
		{"hot short of the requirements", Request{Type: "x", Requirements: map[string]any{"cpu_cores": 8}}, []Candidate{cold, c(hot("hot", 0.3), 1, 0)}, "cold", false},
		{"a full hot worker gives way to another hot one", Request{Type: "x"},
			[]Candidate{cold, c(hot("hot-cheap", 0.2), 1, 1), c(hot("hot-dear", 0.5), 1, 0)}, "hot-dear", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eligible, why := Filter(tc.req, tc.pool, policy)
			if len(eligible) == 0 {
				t.Fatalf("nobody eligible: %s", why)
			}
			got, reason, err := Choose(blueprint.Default, tc.req, eligible, policy, nil)
			if err != nil || got.Worker.ID != tc.want {
				t.Fatalf("chose %s (%q, %v), want %s", got.Worker.ID, reason, err, tc.want)
			}
			if strings.Contains(reason, "hot in cache") != tc.hotPick {
				t.Fatalf("reason %q", reason)
			}
		})
	}
}

// rng is a small deterministic generator, so that a fuzz input replays.
type rng struct{ s uint64 }

func (r *rng) n(k int) int {
	r.s = r.s*6364136223846793005 + 1442695040888963407
	return int((r.s >> 33) % uint64(k))
}

func (r *rng) pick(xs ...string) string { return xs[r.n(len(xs))] }

func (r *rng) subset(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if r.n(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

var fuzzKeys = []string{"cpu_cores", "ram_gb", "gpu_info", "region", "codecs", "model", "vram_gb", "memory_gb", "type",
	"devices", "properties", "installed_software", "installed_artifacts", "installed_models", "extra"}

// value is any JSON-ish value, nested up to depth: numbers of several Go
// types, strings, booleans, null, lists and objects.
func (r *rng) value(depth int, num float64) any {
	switch r.n(10) {
	case 0:
		return float64(r.n(32))
	case 1:
		return r.n(32)
	case 2:
		return json.Number(fmt.Sprint(r.n(32)))
	case 3:
		return num
	case 4:
		return r.pick("eu", "us", "h264", "hevc", "NVIDIA T4", "t4", "gpu", "any", "5.1", "")
	case 5:
		return r.n(2) == 0
	case 6:
		return nil
	case 7, 8:
		if depth > 0 {
			list := []any{}
			for range r.n(4) {
				list = append(list, r.value(depth-1, num))
			}
			return list
		}
	}
	if depth > 0 {
		m := map[string]any{}
		for range r.n(4) {
			m[r.pick(fuzzKeys...)] = r.value(depth-1, num)
		}
		return m
	}
	return "leaf"
}

// requirement is a value for key: mostly of the shape the key expects,
// sometimes anything.
func (r *rng) requirement(key string, num float64) any {
	if r.n(3) == 0 {
		return r.value(3, num)
	}
	switch key {
	case "gpu_info":
		return map[string]any{"vram_gb": num, "model": r.pick("t4", "a100")}
	case "devices":
		return []any{map[string]any{"type": "gpu", "properties": map[string]any{"memory_gb": num}}}
	case "properties":
		return map[string]any{"cpu_cores": r.n(20), "region": r.pick("eu", "us")}
	case "installed_software":
		return map[string]any{"ffmpeg": r.pick("5.1", "6.0", "any")}
	case "installed_artifacts", "installed_models":
		return []any{"sd-1.5", map[string]any{"name": "llama", "version": r.pick("3", "any", "")}}
	case "extra":
		return map[string]any{"websockets": true}
	case "codecs":
		return []any{r.pick("h264", "hevc", "av1")}
	case "region":
		return r.pick("eu", "us")
	}
	return float64(r.n(40))
}

// candidate is a random worker. Half of the workers are well equipped,
// the others have resources of any shape; then each filter has its own
// chance to rule the worker out (no skill, a limit, busy, full, cheap
// reputation, too dear, statuses it cannot return), so that a pool
// usually holds both eligible and ineligible workers.
func (r *rng) candidate(i int) Candidate {
	prices := map[string]float64{}
	if r.n(6) > 0 {
		prices["x"] = float64(r.n(100)) / 100
	}
	props := map[string]any{}
	var devices []protocol.HardwareDevice
	if r.n(2) == 0 {
		props = map[string]any{"cpu_cores": 16.0, "ram_gb": 64, "region": "eu", "codecs": []any{"h264", "hevc"}, "vram_gb": 24.0}
		devices = []protocol.HardwareDevice{gpu(r.pick("NVIDIA T4", "A100"), float64(16+r.n(24)))}
	} else {
		for range r.n(5) {
			k := r.pick(fuzzKeys...)
			props[k] = r.requirement(k, float64(r.n(32)))
		}
		if r.n(2) == 0 {
			devices = []protocol.HardwareDevice{gpu(r.pick("NVIDIA T4", "A100"), float64(r.n(32)))}
		}
	}
	wk := w(fmt.Sprintf("w%02d", i), prices, props, devices...)
	if r.n(6) == 0 {
		wk.Resources = nil
	}
	if r.n(3) > 0 {
		wk.InstalledSoftware = map[string]string{"ffmpeg": r.pick("5.1", "6.0")}
		wk.InstalledArtifacts = []protocol.InstalledArtifact{{Name: "sd-1.5", Version: "1.5"}, {Name: "llama", Version: r.pick("3", "2")}}
		wk.Capabilities.Extra = map[string]any{"websockets": r.n(3) > 0}
	}
	switch r.n(8) {
	case 0:
		wk.Skills = nil // no skill x at all
	case 1:
		wk.Skills = append(wk.Skills, protocol.SkillInfo{Name: "y"})
	}
	for k := range wk.Skills {
		if r.n(3) == 0 {
			wk.Skills[k].OutputStatus = r.subset(protocol.TaskSuccess, protocol.TaskFailure, "needs_review", "partial")
		}
	}
	if r.n(3) == 0 {
		wk.AvailableSkills = r.subset("x", "y")
	}
	wk.HotSkills = r.subset("x", "y")
	wk.Status = r.pick("idle", "idle", "idle", "idle", "", "busy", "offline")
	if r.n(3) == 0 {
		wk.MaxConcurrent = 1 + r.n(3)
	}
	rep := 1.0
	if r.n(3) == 0 {
		rep = float64(r.n(101)) / 100
	}
	return c(wk, rep, r.n(4))
}

// FuzzSelection: whatever the worker table and the task (requirements of
// any shape, required statuses, excluded workers), Filter keeps exactly the
// workers that pass Check (minus the excluded, unless only they pass), and
// the chosen worker passes every filter: it has the skill, may start it,
// is live with room, within price and reputation, returns every routed
// status and meets the requirements; an excluded worker is chosen only
// when no other passes, a cold one only when no hot one is eligible.
func FuzzSelection(f *testing.F) {
	f.Add(uint64(1), uint8(5), 4.0, 0.5, uint8(0))
	f.Add(uint64(7), uint8(40), 0.0, 0.0, uint8(3))
	f.Add(uint64(42), uint8(12), 8.0, 0.3, uint8(1))
	f.Add(uint64(1234567), uint8(59), 16.0, 0.0, uint8(2))
	f.Add(uint64(99), uint8(3), -1.0, 2.0, uint8(4))
	f.Add(uint64(2024), uint8(25), 24.0, 0.05, uint8(5))
	f.Add(uint64(31337), uint8(8), math.NaN(), math.Inf(1), uint8(0))
	for i := range 24 { // more tables, every strategy
		f.Add(uint64(1000+i*7919), uint8(4+i*5), float64(i%20), float64(i%5)/4, uint8(i))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, num, maxCost float64, strat uint8) {
		r := &rng{s: seed}
		var pool []Candidate
		for i := range int(n%60) + 1 {
			pool = append(pool, r.candidate(i))
		}
		req := Request{Type: "x", MaxCost: maxCost, Requirements: map[string]any{}}
		for range r.n(4) {
			k := r.pick(fuzzKeys...)
			req.Requirements[k] = r.requirement(k, num)
		}
		if r.n(3) > 0 {
			req.Statuses = r.subset(protocol.TaskSuccess, protocol.TaskFailure, "needs_review", "partial")
		}
		for range r.n(4) {
			req.Exclude = append(req.Exclude, fmt.Sprintf("w%02d", r.n(len(pool)+2))) // some not in the pool
		}
		_ = Describe(req.Requirements) // must not panic on any shape

		pass := map[string]bool{} // by Check, the explaining path
		fresh := 0                // of those, not excluded
		for _, cand := range pool {
			ok, why := Check(req, cand, policy)
			if !ok && why == "" {
				t.Fatalf("%s rejected without a reason", cand.Worker.ID)
			}
			if ok {
				pass[cand.Worker.ID] = true
				if !slices.Contains(req.Exclude, cand.Worker.ID) {
					fresh++
				}
			}
		}
		eligible, why := Filter(req, pool, policy)
		if len(eligible) == 0 {
			if len(pass) > 0 || why == "" {
				t.Fatalf("nobody eligible (reason %q) but %d pass Check", why, len(pass))
			}
			return
		}
		if len(pass) == 0 {
			// Everyone that would do is below the reputation floor: the
			// best of them, and the reason says so.
			floorless := policy
			floorless.MinReputation = 0
			if !strings.Contains(why, "below the reputation floor") {
				t.Fatalf("workers below the floor kept without saying so: %q", why)
			}
			for _, cand := range eligible {
				if ok, whyNot := Check(req, cand, floorless); !ok || cand.Reputation != eligible[0].Reputation {
					t.Fatalf("below the floor, Filter kept %s (%s, reputation %v)", cand.Worker.ID, whyNot, cand.Reputation)
				}
			}
			for _, cand := range pool {
				if ok, _ := Check(req, cand, floorless); ok && cand.Reputation > eligible[0].Reputation &&
					!(slices.Contains(req.Exclude, cand.Worker.ID)) {
					t.Fatalf("below the floor, %s (reputation %v) was passed over for %v", cand.Worker.ID, cand.Reputation, eligible[0].Reputation)
				}
			}
			return
		}
		if why != "" {
			t.Fatalf("workers pass every filter, yet Filter says %q", why)
		}
		for _, cand := range eligible {
			excluded := slices.Contains(req.Exclude, cand.Worker.ID)
			if !pass[cand.Worker.ID] || (excluded && fresh > 0) {
				t.Fatalf("Filter kept %s (passes Check: %v, excluded: %v)", cand.Worker.ID, pass[cand.Worker.ID], excluded)
			}
		}
		if want := fresh; (fresh > 0 && len(eligible) != want) || (fresh == 0 && len(eligible) != len(pass)) {
			t.Fatalf("Filter kept %d workers; %d pass Check, %d of them not excluded", len(eligible), len(pass), fresh)
		}

		strategies := blueprint.Strategies()
		strategy := strategies[int(strat)%len(strategies)]
		counter := int64(0)
		got, reason, err := Choose(strategy, req, eligible, policy, func() (int64, error) { counter++; return counter, nil })
		if err != nil || reason == "" {
			t.Fatalf("Choose: %q %v", reason, err)
		}
		wk := got.Worker
		if ok, why := Check(req, got, policy); !ok {
			t.Fatalf("chose %s, which fails a filter: %s", wk.ID, why)
		}
		// The filters again, spelled out, so that a bug in Check cannot
		// hide one in selection.
		switch {
		case !wk.HasSkill("x"):
			t.Fatalf("chose %s without the skill", wk.ID)
		case len(wk.AvailableSkills) > 0 && !slices.Contains(wk.AvailableSkills, "x"):
			t.Fatalf("chose %s, at its limit for the skill", wk.ID)
		case wk.Status != "" && wk.Status != protocol.WorkerIdle:
			t.Fatalf("chose %s, which is %s", wk.ID, wk.Status)
		case wk.MaxConcurrent > 0 && got.Load >= wk.MaxConcurrent:
			t.Fatalf("chose %s at capacity", wk.ID)
		case got.Reputation < policy.MinReputation:
			t.Fatalf("chose %s below the reputation floor", wk.ID)
		case slices.Contains(req.Exclude, wk.ID) && fresh > 0:
			t.Fatalf("chose the excluded %s while %d others pass", wk.ID, fresh)
		}
		if req.MaxCost > 0 {
			if cost, ok := wk.Cost("x"); !ok || cost > req.MaxCost {
				t.Fatalf("chose %s at price %v (has %v) over max cost %v", wk.ID, cost, ok, req.MaxCost)
			}
		}
		for _, s := range wk.Skills {
			if s.Name != "x" || len(s.OutputStatus) == 0 {
				continue
			}
			for _, st := range req.Statuses {
				if !slices.Contains(standardStatuses, st) && !slices.Contains(s.OutputStatus, st) {
					t.Fatalf("chose %s, which cannot return %s", wk.ID, st)
				}
			}
		}
		if ok, why := Requirements(wk, req.Requirements); !ok {
			t.Fatalf("chose %s short of the requirements: %s", wk.ID, why)
		}
		if strategy == blueprint.Default && !slices.Contains(wk.HotSkills, "x") {
			for _, cand := range eligible {
				if slices.Contains(cand.Worker.HotSkills, "x") {
					t.Fatalf("default chose the cold %s while the hot %s is eligible", wk.ID, cand.Worker.ID)
				}
			}
		}
	})
}

func BenchmarkSelect1000Workers(b *testing.B) {
	var pool []Candidate
	for i := range 1000 {
		wk := w(fmt.Sprintf("worker-%04d", i), map[string]float64{"x": float64(i%97) / 1000, "y": 1}, map[string]any{"cpu_cores": float64(i % 16)},
			gpu("NVIDIA T4", float64(i%24)))
		pool = append(pool, c(wk, 0.3+float64(i%70)/100, i%4))
	}
	req := Request{Type: "x", MaxCost: 0.08, Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 4}}}
	counter := int64(0)
	next := func() (int64, error) { counter++; return counter, nil }
	for _, s := range []blueprint.Strategy{blueprint.Default, blueprint.BestValue, blueprint.RoundRobin} {
		b.Run(string(s), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				eligible, _ := Filter(req, pool, policy)
				if _, _, err := Choose(s, req, eligible, policy, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
