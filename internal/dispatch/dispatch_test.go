package dispatch

import (
	"fmt"
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
	base := func() *store.Worker { return w("w", map[string]float64{"x": 0.5}, nil) }
	busy := base()
	busy.Status = protocol.WorkerBusy
	full := base()
	full.MaxConcurrent = 2
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
	if v := Value(c(w("a", map[string]float64{"x": 0.5}, nil), 0.25, 0), "x"); v != 2 {
		t.Fatalf("value %v", v)
	}
}

// FuzzSelection: whatever the worker table and the task, the chosen worker
// passes every filter.
func FuzzSelection(f *testing.F) {
	f.Add(uint64(1), uint8(5), 4.0, 0.5, uint8(0))
	f.Add(uint64(7), uint8(40), 0.0, 0.0, uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, vram, maxCost float64, strat uint8) {
		rnd := seed
		rand := func(k uint64) uint64 { rnd = rnd*6364136223846793005 + 1442695040888963407; return (rnd >> 33) % k }
		var pool []Candidate
		for i := range int(n%60) + 1 {
			prices := map[string]float64{}
			if rand(4) > 0 {
				prices["x"] = float64(rand(100)) / 100
			}
			wk := w(fmt.Sprintf("w%02d", i), prices, map[string]any{"cpu_cores": float64(rand(16))})
			if rand(2) == 0 {
				wk.Resources.Devices = []protocol.HardwareDevice{gpu("NVIDIA T4", float64(rand(32)))}
			}
			wk.Status = []string{"idle", "idle", "idle", "busy", ""}[rand(5)]
			wk.MaxConcurrent = int(rand(4))
			pool = append(pool, c(wk, float64(rand(101))/100, int(rand(5))))
		}
		if vram < 0 || vram != vram || maxCost < 0 || maxCost != maxCost {
			return
		}
		req := Request{Type: "x", MaxCost: maxCost, Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": vram}}}
		eligible, why := Filter(req, pool, policy)
		if len(eligible) == 0 {
			if why == "" {
				t.Fatal("no eligible worker and no reason")
			}
			return
		}
		strategies := blueprint.Strategies()
		counter := int64(0)
		got, _, err := Choose(strategies[int(strat)%len(strategies)], req, eligible, policy, func() (int64, error) { counter++; return counter, nil })
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := Check(req, got, policy); !ok {
			t.Fatalf("chose %s, which fails a filter: %s", got.Worker.ID, why)
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
