package offload

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
)

func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(9); {
	case depth > 3 || k < 2:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case k == 2:
		return r.NormFloat64() * 1e300
	case k == 3:
		return r.IntN(2) == 0
	case k == 4:
		return nil
	case k == 5:
		return []string{"a<b", "\u2028", "x"}
	case k == 6:
		m := map[string]any{}
		for range r.IntN(5) {
			m[strings.Repeat("k\"", r.IntN(3))+string(rune(r.IntN(0x10000)))] = randomValue(r, depth+1)
		}
		return m
	default:
		s := make([]any, r.IntN(5))
		for i := range s {
			s[i] = randomValue(r, depth+1)
		}
		return s
	}
}

// TestMayExceedIsAnUpperBound: MayExceed never says "fits" for a value
// whose encoding is longer than the limit.
func TestMayExceedIsAnUpperBound(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		m := map[string]any{"v": randomValue(r, 0), "w": randomValue(r, 0)}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int64{0, int64(len(raw)) - 1, int64(len(raw)), int64(len(raw)) * 7} {
			if !MayExceed(m, limit) && int64(len(raw)) > limit {
				t.Fatalf("case %d: %d bytes, limit %d, MayExceed false: %s", i, len(raw), limit, raw)
			}
		}
		if MayExceed(m, int64(len(raw))*6+64) {
			t.Fatalf("case %d: the bound is more than 6 times the size: %s", i, raw)
		}
	}
}

func TestMayExceedDoesNotAllocate(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in a parallel test.
	m := map[string]any{"file_name": "special_analysis.txt", "n": 3.0, "list": []any{"a", true, nil}, "obj": map[string]any{"x": "y"}}
	if n := testing.AllocsPerRun(100, func() { MayExceed(m, 1<<20) }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	st, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := strings.Repeat("x", 3000)
	huge := map[string]any{"rows": []any{big, big, big}}
	m := map[string]any{"small": "keep me", "big": big, "huge": huge, "n": 1.0}
	keyOf := func(name string) string { return blob.JobKey("j", "params/t/"+ObjectName(name)) }

	// Under the threshold nothing moves.
	if md, err := Values(ctx, st, m, 1<<20, keyOf); err != nil || md != nil {
		t.Fatalf("%v %v", md, err)
	}
	// Over it the largest values move until the rest fits.
	md, err := Values(ctx, st, m, 4000, keyOf)
	if err != nil {
		t.Fatal(err)
	}
	if len(md) != 1 || md["huge"].URI == "" || !IsInlineJSON(md["huge"]) || m["huge"] != md["huge"].URI || m["big"] != big {
		t.Fatalf("moved %v; params %v", md, m["huge"])
	}
	rc, info, err := st.Get(ctx, "jobs/j/params/t/huge.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	var back any
	if err := json.Unmarshal(raw, &back); err != nil || info.ETag != md["huge"].ETag || info.Size != md["huge"].Size {
		t.Fatalf("stored %s: %v %+v", raw, err, info)
	}
	if want, _ := json.Marshal(huge); !bytes.Equal(raw, want) {
		t.Fatalf("stored JSON differs")
	}
	// Small values stay even when the total is over the threshold.
	m2 := map[string]any{"a": "short", "b": "also short"}
	if md, err := Values(ctx, st, m2, 5, keyOf); err != nil || md != nil {
		t.Fatalf("%v %v", md, err)
	}
}

func TestValuesLeavesParamsAloneOnError(t *testing.T) {
	t.Parallel()
	st, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("y", 5000)
	m := map[string]any{"a": big, "b": big}
	_, err = Values(context.Background(), st, m, 100, func(name string) string {
		if name == "b" {
			return "../bad"
		}
		return "ok/" + name
	})
	if err == nil || m["a"] != big || m["b"] != big {
		t.Fatalf("err %v, params changed: %v", err, m["a"] != big)
	}
}

func TestObjectName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "..", "a/b", "x\x00", strings.Repeat("n", 500)} {
		if err := blob.ValidName(ObjectName(name)); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// BenchmarkMayExceed is the cost the engine adds to a dispatch (and to a
// result) when blob storage is on and nothing is large.
func BenchmarkMayExceed(b *testing.B) {
	m := map[string]any{"file_name": "special_analysis.txt", "priority": 10.0, "requirements": map[string]any{"gpu": true, "tags": []any{"a", "b"}}}
	b.ReportAllocs()
	for b.Loop() {
		if MayExceed(m, DefaultThreshold) {
			b.Fatal("small params exceed")
		}
	}
}
