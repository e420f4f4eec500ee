package blueprint

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func noop(c *Context) error { return nil }

func goTo(s string) Handler { return func(c *Context) error { return c.GoTo(s) } }

func TestValidateAcceptsAWellFormedBlueprint(t *testing.T) {
	t.Parallel()
	bp := New("ok").Endpoint("v1", "jobs/ok")
	bp.Start("start", goTo("work"), To("work"))
	bp.State("work", noop, On("success", "done"), On("failure", "broken"), Using(Cheapest))
	bp.State("work", noop, When(`initial_data.fast == true`), To("done"))
	bp.State("fan", noop, FanIn("join"))
	bp.State("work", noop, When(`initial_data.parallel == true`), To("fan"))
	bp.Aggregator("join", goTo("done"), To("done"))
	bp.End("done", nil, AsFinished())
	bp.End("broken", nil)
	if err := bp.Validate(); err != nil {
		t.Fatalf("unexpected validation error: %v", err)
	}
	if v, p := bp.API(); v != "v1" || p != "/jobs/ok" {
		t.Fatalf("endpoint = %q %q", v, p)
	}
	if st, ok := bp.IsEnd("broken"); !ok || st != "failed" {
		t.Fatalf("broken ends as %q", st)
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func() *Blueprint
		want  []string // every fragment must appear in the error
	}{
		{"missing start", func() *Blueprint {
			return New("b").State("a", noop, To("end")).End("end", nil)
		}, []string{`blueprint "b"`, "no start state"}},
		{"missing end", func() *Blueprint {
			return New("b").Start("a", noop, To("a"))
		}, []string{"no end state"}},
		{"second start", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).Start("c", noop, To("end")).End("end", nil)
		}, []string{`state "c"`, "already has a start state"}},
		{"unknown target", func() *Blueprint {
			return New("b").Start("a", noop, To("nowhere")).End("end", nil)
		}, []string{`state "a"`, `undeclared state "nowhere"`, `state "end"`, "unreachable"}},
		{"unknown route target", func() *Blueprint {
			return New("b").Start("a", noop, On("success", "end"), On("failure", "ghost")).End("end", nil)
		}, []string{`state "a"`, `undeclared state "ghost"`}},
		{"unreachable", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).State("island", noop, To("end")).End("end", nil)
		}, []string{`state "island"`, "unreachable"}},
		{"duplicate default", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).State("a", noop, To("end")).End("end", nil)
		}, []string{`state "a"`, "duplicate handler"}},
		{"duplicate condition", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).
				State("a", noop, When("job_id == 'x'"), To("end")).
				State("a", noop, When("job_id == 'x'"), To("end")).End("end", nil)
		}, []string{"duplicate handler", "job_id == 'x'"}},
		{"condition syntax", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).
				State("a", noop, When("initial_data.x == == 1"), To("end")).End("end", nil)
		}, []string{`state "a"`, "condition"}},
		{"condition not boolean", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).
				State("a", noop, When("job_id"), To("end")).End("end", nil)
		}, []string{`state "a"`, "condition"}},
		{"no transition declared", func() *Blueprint {
			return New("b").Start("a", noop).End("end", nil)
		}, []string{`state "a"`, "declares no transition"}},
		{"fan-in to non-aggregator", func() *Blueprint {
			return New("b").Start("a", noop, FanIn("end")).End("end", nil)
		}, []string{"not an aggregator"}},
		{"goto aggregator", func() *Blueprint {
			return New("b").Start("a", noop, To("agg")).Aggregator("agg", noop, To("end")).End("end", nil)
		}, []string{"only be reached through FanIn"}},
		{"unknown strategy", func() *Blueprint {
			return New("b").Start("a", noop, On("success", "end"), Using("fastest")).End("end", nil)
		}, []string{`unknown dispatch strategy "fastest"`}},
		{"end with transitions", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).End("end", nil, To("a"))
		}, []string{`state "end"`, "end state cannot declare"}},
		{"state as two kinds", func() *Blueprint {
			return New("b").Start("a", noop, To("end")).State("end", noop, To("a")).End("end", nil)
		}, []string{`state "end"`, "declared both"}},
		{"bad names", func() *Blueprint {
			return New("b b").Start("a/b", noop, To("end")).End("end", nil)
		}, []string{"name must match"}},
		{"bad endpoint", func() *Blueprint {
			return New("b").Endpoint("v 1", "/x?y").Start("a", noop, To("end")).End("end", nil)
		}, []string{"endpoint version", "invalid endpoint path"}},
		{"duplicate outcome", func() *Blueprint {
			return New("b").Start("a", noop, On("success", "end"), On("success", "end")).End("end", nil)
		}, []string{`outcome "success" routed twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build().Validate()
			if err == nil {
				t.Fatal("expected a validation error")
			}
			for _, frag := range tc.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q does not mention %q", err, frag)
				}
			}
		})
	}
}

func TestConditionsFirstMatchWinsWithFallback(t *testing.T) {
	t.Parallel()
	var ran []string
	mark := func(name, to string) Handler {
		return func(c *Context) error { ran = append(ran, name); return c.GoTo(to) }
	}
	bp := New("cond")
	bp.Start("s", mark("default", "end"), To("end"))
	bp.State("s", mark("low", "end"), When(`initial_data.quality == 'low'`), To("end"))
	bp.State("s", mark("big", "end"), When(`initial_data.size > 10 && state_history.seen == true`), To("end"))
	bp.State("s", mark("low-too", "end"), When(`initial_data.quality in ['low', 'mid']`), To("end"))
	bp.State("s", mark("retry", "end"), When(`result.status == 'failure' && result.error.code == 'TRANSIENT_ERROR'`), To("end"))
	bp.State("s", mark("deep", "end"), When(`initial_data.a.b.c == 1`), To("end"))
	bp.End("end", nil)
	if err := bp.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in      map[string]any
		history map[string]any
		last    *TaskResult
		want    string
	}{
		{map[string]any{"quality": "low"}, nil, nil, "low"},
		{map[string]any{"quality": "mid"}, nil, nil, "low-too"},
		{map[string]any{"size": 11.0}, map[string]any{"seen": true}, nil, "big"},
		{map[string]any{"size": 11.0}, nil, nil, "default"},
		{map[string]any{"size": "eleven"}, map[string]any{"seen": true}, nil, "default"}, // type error is false
		{nil, nil, &TaskResult{Status: "failure", Error: &protocolError}, "retry"},
		{map[string]any{"a": map[string]any{"b": map[string]any{"c": 1.0}}}, nil, nil, "deep"},
		{map[string]any{"a": nil}, nil, nil, "default"}, // nil intermediate is false
		{nil, nil, nil, "default"},
	} {
		ran = nil
		out, err := bp.Execute(context.Background(), Input{JobID: "j", State: "s", InitialData: tc.in, StateHistory: tc.history, LastResult: tc.last})
		if err != nil {
			t.Fatal(err)
		}
		if len(ran) != 1 || ran[0] != tc.want {
			t.Errorf("input %v: ran %v, want %s", tc.in, ran, tc.want)
		}
		if a, ok := out.Action.(GoToAction); !ok || a.State != "end" {
			t.Errorf("action = %#v", out.Action)
		}
	}
}

func TestNoMatchWithoutFallbackIsMisuse(t *testing.T) {
	t.Parallel()
	bp := New("b")
	bp.Start("s", goTo("end"), When("initial_data.x == 1"), To("end"))
	bp.End("end", nil)
	if err := bp.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := bp.Execute(context.Background(), Input{State: "s"})
	if !errors.Is(err, ErrMisuse) || !strings.Contains(err.Error(), "no condition matched") {
		t.Fatalf("err = %v", err)
	}
}

func TestActionRules(t *testing.T) {
	t.Parallel()
	task := Task{Type: "resize"}
	for _, tc := range []struct {
		name    string
		fn      Handler
		opts    []Option
		state   string
		want    string // "" means success
		wantAct string
	}{
		{"goto", goTo("end"), []Option{To("end")}, "s", "", "blueprint.GoToAction"},
		{"two actions", func(c *Context) error { _ = c.GoTo("end"); return c.Dispatch(task) }, []Option{To("end"), On("success", "end")}, "s", "exactly one action", ""},
		{"no action", noop, []Option{To("end")}, "s", "without choosing an action", ""},
		{"undeclared goto", goTo("other"), []Option{To("end")}, "s", `GoTo("other")`, ""},
		{"dispatch without routes", func(c *Context) error { return c.Dispatch(task) }, []Option{To("end")}, "s", "declares no On", ""},
		{"parallel without fan-in", func(c *Context) error { return c.DispatchParallel([]Task{task}) }, []Option{To("end")}, "s", "declares no FanIn", ""},
		{"bad task type", func(c *Context) error { return c.Dispatch(Task{Type: "a b"}) }, []Option{On("success", "end")}, "s", "task type", ""},
		{"wrong child", func(c *Context) error { return c.RunBlueprint("other", nil) }, []Option{Child("kid"), On("success", "end")}, "s", `declares Child("kid")`, ""},
		{"dispatch", func(c *Context) error { return c.Dispatch(task) }, []Option{On("success", "end"), Using(RoundRobin)}, "s", "", "blueprint.DispatchAction"},
		{"approval", func(c *Context) error { return c.AwaitApproval("ok?") }, []Option{On("approved", "end")}, "s", "", "blueprint.ApprovalAction"},
		{"child", func(c *Context) error { return c.RunBlueprint("kid", map[string]any{"n": 1}) }, []Option{Child("kid"), On("success", "end")}, "s", "", "blueprint.ChildAction"},
		{"error ignored still misuse", func(c *Context) error { _ = c.GoTo("end"); _ = c.GoTo("end"); return nil }, []Option{To("end")}, "s", "exactly one action", ""},
		{"handler error", func(c *Context) error { return errors.New("boom") }, []Option{To("end")}, "s", "boom", ""},
		{"panic", func(c *Context) error { panic("kaboom") }, []Option{To("end")}, "s", "panicked: kaboom", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bp := New("b").Start("s", tc.fn, tc.opts...).End("end", nil)
			out, err := bp.Execute(context.Background(), Input{State: tc.state})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := typeName(out.Action); got != tc.wantAct {
					t.Fatalf("action %s, want %s", got, tc.wantAct)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEndStateHandlerCannotAct(t *testing.T) {
	t.Parallel()
	bp := New("b").Start("s", goTo("end"), To("end")).
		End("end", func(c *Context) error { return c.GoTo("s") })
	_, err := bp.Execute(context.Background(), Input{State: "end"})
	if !errors.Is(err, ErrMisuse) {
		t.Fatalf("err = %v", err)
	}
	bp = New("b").Start("s", goTo("end"), To("end")).
		End("end", func(c *Context) error { return c.SetResult(map[string]int{"n": 3}) })
	out, err := bp.Execute(context.Background(), Input{State: "end"})
	if err != nil || !out.HasResult || out.Result.(map[string]any)["n"] != 3.0 {
		t.Fatalf("out = %#v, err = %v", out, err)
	}
}

func TestContextHelpers(t *testing.T) {
	t.Parallel()
	type prefs struct {
		Theme string `json:"theme"`
	}
	bp := New("b").DataStore("kv", NewMemoryStore(map[string]any{"u": "dark"}))
	bp.Start("s", func(c *Context) error {
		v, ok, _ := c.Store("kv").Get(c.Context(), "u")
		if !ok || v != "dark" {
			t.Errorf("store value %v", v)
		}
		if err := c.Set("prefs", prefs{Theme: "dark"}); err != nil {
			return err
		}
		var p prefs
		if err := c.Decode("prefs", &p); err != nil || p.Theme != "dark" {
			t.Errorf("decode %+v %v", p, err)
		}
		var in struct{ Path string }
		if err := c.DecodeInput(&in); err != nil || in.Path != "/x" {
			t.Errorf("input %+v %v", in, err)
		}
		if c.Set("bad", func() {}) == nil {
			t.Error("a func value was accepted")
		}
		return c.GoTo("end")
	}, To("end")).End("end", nil)
	hist := map[string]any{}
	if _, err := bp.Execute(context.Background(), Input{State: "s", InitialData: map[string]any{"Path": "/x"}, StateHistory: hist}); err != nil {
		t.Fatal(err)
	}
	if hist["prefs"].(map[string]any)["theme"] != "dark" {
		t.Fatalf("history %v", hist)
	}
}

func TestGraphs(t *testing.T) {
	t.Parallel()
	bp := New("g")
	bp.Start("start", goTo("decide"), To("decide"))
	bp.State("decide", noop, On("success", "fan"), On("failure", "bad"), Using(BestValue))
	bp.State("decide", noop, When(`initial_data.q == "low"`), To("fan"))
	bp.State("fan", noop, FanIn("join"))
	bp.Aggregator("join", noop, Child("kid"), On("success", "finished"), On("failure", "bad"))
	bp.End("finished", nil)
	bp.End("bad", nil)
	if err := bp.Validate(); err != nil {
		t.Fatal(err)
	}
	dot := bp.DOT()
	for _, frag := range []string{
		`digraph "g"`, `"__start__" -> "start"`, `"decide" -> "fan" [label="success"]`,
		`"decide" -> "bad" [label="failure"]`, `"decide" -> "fan" [label="when initial_data.q == \"low\""]`,
		`"fan" -> "join" [label="fan-out / fan-in", style=bold]`, `runs blueprint kid`, `strategy best_value`,
		`"finished" [label="finished\nend: finished", peripheries=2, color=darkgreen]`, `color=firebrick`,
	} {
		if !strings.Contains(dot, frag) {
			t.Errorf("DOT lacks %s:\n%s", frag, dot)
		}
	}
	if strings.Contains(dot, "class=") {
		t.Errorf("plain DOT marks states:\n%s", dot)
	}
	marked := bp.DOTPath([]string{"start", "decide", "fan"}, "fan")
	for _, frag := range []string{
		`"__start__" -> "start" [class="taken"]`, `"start" -> "decide" [class="taken"]`,
		`"decide" -> "fan" [label="success", class="taken"]`, `"decide" -> "bad" [label="failure"];`,
		`"decide" [label="decide\nstrategy best_value", class="visited"]`, `"fan" [label="fan\nparallel tasks", class="current"]`,
		`"join" [label="join\naggregator\nruns blueprint kid", style="rounded,dashed"];`,
	} {
		if !strings.Contains(marked, frag) {
			t.Errorf("DOTPath lacks %s:\n%s", frag, marked)
		}
	}
	mm := bp.Mermaid()
	for _, frag := range []string{
		"stateDiagram-v2", `state "decide" as s1`, "[*] --> s0", "s1 --> s2 : success",
		"s2 --> s3 : fan-out / fan-in", "s4 --> [*]", "note right of s3 : aggregator, runs blueprint kid",
	} {
		if !strings.Contains(mm, frag) {
			t.Errorf("Mermaid lacks %q:\n%s", frag, mm)
		}
	}
}

func typeName(a Action) string {
	switch a.(type) {
	case GoToAction:
		return "blueprint.GoToAction"
	case DispatchAction:
		return "blueprint.DispatchAction"
	case ApprovalAction:
		return "blueprint.ApprovalAction"
	case ChildAction:
		return "blueprint.ChildAction"
	case ParallelAction:
		return "blueprint.ParallelAction"
	}
	return "nil"
}

// A handler's logger carries the job's id, blueprint and state, added to
// the logger the engine gives.
func TestContextLoggerCarriesTheJob(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil)).With("trace_id", "t1")
	bp := New("logging")
	bp.Start("s", func(c *Context) error {
		c.Logger().Info("hello")
		return c.GoTo("end")
	}, To("end"))
	bp.End("end", nil)
	if _, err := bp.Execute(context.Background(), Input{JobID: "j1", State: "s", Logger: base}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"msg=hello", "trace_id=t1", "job_id=j1", "blueprint=logging", "state=s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %q", buf.String(), want)
		}
	}
}
