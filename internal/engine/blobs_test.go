package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

func TestRefOwner(t *testing.T) {
	t.Parallel()
	const bucket = "payloads"
	for _, tc := range []struct {
		ref     string
		owner   string
		tenant  bool
		invalid bool
	}{
		{"plain text", "", false, false},
		{"https://payloads/jobs/a/x", "", false, false},
		{"s3://payloads/jobs/a/x.bin", "a", true, false},
		{"s3://payloads/jobs/a/sub/dir/", "a", true, false},
		{"s3://payloads/jobs/a/", "a", true, false},
		{"s3://payloads/jobs/a", "a", true, false},
		{"s3://payloads/JOBS/a/x", "a", true, false}, // not a key we write, but judged as one
		{"s3://payloads/jobs/", "", true, false},     // every job's objects
		{"s3://payloads/", "", true, false},          // the whole bucket
		{"s3://payloads", "", true, false},
		{"s3://payloads/jobs", "", false, false}, // one object named "jobs"
		{"s3://payloads/shared/model.bin", "", false, false},
		{"s3://payloads/jobsx/a/x", "", false, false},
		{"s3://other-bucket/jobs/a/x", "", false, false},
		{"s3://payloads/jobs/a/../b/x", "", false, true},
		{"s3://payloads//jobs/b/x", "", false, true},
		{"s3://Payloads/jobs/b/x", "", false, true},
		{"s3://Other_Bucket/jobs/b/x", "", false, false}, // invalid, but not our bucket
	} {
		owner, tenant, err := refOwner(tc.ref, bucket)
		if owner != tc.owner || tenant != tc.tenant || (err != nil) != tc.invalid {
			t.Errorf("refOwner(%q) = %q, %v, %v; want %q, %v, invalid %v", tc.ref, owner, tenant, err, tc.owner, tc.tenant, tc.invalid)
		}
	}
}

type refParams struct {
	Inputs []string `json:"inputs"`
}

func TestWalkStrings(t *testing.T) {
	t.Parallel()
	v := map[string]any{
		"a": "one",
		"b": []any{"two", 3.0, map[string]any{"c": "three", "s3://key-is-not-a-value": nil}},
		"d": []string{"four"},
		"e": map[string]string{"k": "five"},
		"f": refParams{Inputs: []string{"six"}},
		"g": []map[string]any{{"h": "seven"}},
		"i": true,
	}
	var got []string
	if !walkStrings(v, func(s string) bool { got = append(got, s); return true }) {
		t.Fatal("walk stopped")
	}
	want := []string{"five", "four", "one", "seven", "six", "three", "two"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("strings %v, want %v", got, want)
	}
	n := 0
	if walkStrings(v, func(string) bool { n++; return false }) || n != 1 {
		t.Fatalf("walk did not stop at once: %d calls", n)
	}
}

// holdBP parks its jobs until a decision; its child variant runs it as a
// child job.
func holdBP() []*blueprint.Blueprint {
	hold := blueprint.New("hold").Start("wait", func(c *blueprint.Context) error {
		return c.AwaitApproval("hold")
	}, blueprint.On("go", "finished")).End("finished", nil)
	parent := blueprint.New("parent").Start("start", func(c *blueprint.Context) error {
		return c.RunBlueprint("hold", nil)
	}, blueprint.On("success", "finished"), blueprint.On("failure", "finished")).End("finished", nil)
	return []*blueprint.Blueprint{hold, parent}
}

func (en *env) createFor(client, bp string, data map[string]any) *store.Job {
	en.t.Helper()
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: bp, InitialData: data, Client: blueprint.Client{Name: client}})
	if err != nil {
		en.t.Fatal(err)
	}
	return j
}

// failingGets is a store whose GetJob fails for one job id.
type failingGets struct {
	store.Store
	id string
}

func (f failingGets) GetJob(ctx context.Context, id string) (*store.Job, error) {
	if id == f.id {
		return nil, errors.New("connection refused")
	}
	return f.Store.GetJob(ctx, id)
}

func (f failingGets) LoadJob(ctx context.Context, id string, taskIDs ...string) (*store.Job, error) {
	if id == f.id {
		return nil, errors.New("connection refused")
	}
	return f.Store.LoadJob(ctx, id, taskIDs...)
}

// TestCheckParamRefs: task params may refer to the objects of the job's
// own client (its own, an earlier job's, a parent's or child's), to other
// buckets and to keys outside jobs/, but not to another client's job, an
// unknown job, or a prefix over every job.
func TestCheckParamRefs(t *testing.T) {
	t.Parallel()
	st := &failingGets{Store: memory.New(memory.Options{}), id: "broken-store-id"}
	blobs, err := local.Open(local.Options{Dir: t.TempDir(), Bucket: "payloads"})
	if err != nil {
		t.Fatal(err)
	}
	en := newEnv(t, Config{Store: st, Blobs: blobs}, holdBP()...)
	own := en.createFor("acme", "hold", nil)
	earlier := en.createFor("acme", "hold", nil)
	parent := en.createFor("acme", "parent", nil)
	parent = en.wait(parent.ID, "waiting for its child", func(j *store.Job) bool { return j.ChildJobID != "" })
	rival := en.createFor("rival", "hold", nil)
	uri := func(id, name string) string { return blob.NewURI("payloads", blob.JobKey(id, name)) }
	dispatch := func(params map[string]any) blueprint.Outcome {
		return blueprint.Outcome{Action: blueprint.DispatchAction{Task: blueprint.Task{Type: "peek", Params: params}}}
	}

	allowed := map[string]blueprint.Outcome{
		"own file":             dispatch(map[string]any{"in": uri(own.ID, "a.bin")}),
		"own prefix":           dispatch(map[string]any{"in": "s3://payloads/jobs/" + own.ID + "/"}),
		"earlier job":          dispatch(map[string]any{"inputs": []any{uri(earlier.ID, "a.bin"), uri(own.ID, "b.bin")}}),
		"a parent's child":     dispatch(map[string]any{"in": uri(parent.ChildJobID, "a.bin")}),
		"other bucket":         dispatch(map[string]any{"in": blob.NewURI("elsewhere", blob.JobKey(rival.ID, "a.bin"))}),
		"outside jobs/":        dispatch(map[string]any{"in": "s3://payloads/models/base.bin"}),
		"no references":        dispatch(map[string]any{"n": 1.0, "s": "jobs/" + rival.ID + "/a.bin"}),
		"no params":            dispatch(nil),
		"not a dispatch":       {Action: blueprint.GoToAction{State: "x"}},
		"rival ref as map key": dispatch(map[string]any{uri(rival.ID, "a.bin"): "key"}),
	}
	for name, out := range allowed {
		if err := en.e.checkParamRefs(en.ctx, own, out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	child, err := en.e.GetJob(en.ctx, parent.ChildJobID)
	if err != nil {
		t.Fatal(err)
	}
	if err := en.e.checkParamRefs(en.ctx, child, dispatch(map[string]any{"in": uri(parent.ID, "a.bin")})); err != nil {
		t.Errorf("a child referring to its parent's file: %v", err)
	}

	foreign := uri(rival.ID, "secret.bin")
	refused := map[string]struct {
		out    blueprint.Outcome
		ref    string
		reason string
	}{
		"another client's file": {dispatch(map[string]any{"in": foreign}), foreign, "which belongs to another client"},
		"nested in a list": {dispatch(map[string]any{"opts": map[string]any{"inputs": []any{uri(own.ID, "a.bin"), foreign}}}),
			foreign, "which belongs to another client"},
		"typed value": {dispatch(map[string]any{"p": refParams{Inputs: []string{foreign}}}), foreign, "which belongs to another client"},
		"another client's prefix": {dispatch(map[string]any{"in": "s3://payloads/jobs/" + rival.ID + "/"}),
			"s3://payloads/jobs/" + rival.ID + "/", "which belongs to another client"},
		"unknown job":      {dispatch(map[string]any{"in": uri("no-such-job", "a.bin")}), uri("no-such-job", "a.bin"), "which belongs to another client"},
		"every job":        {dispatch(map[string]any{"in": "s3://payloads/jobs/"}), "s3://payloads/jobs/", "which covers other clients' objects"},
		"the whole bucket": {dispatch(map[string]any{"in": "s3://payloads/"}), "s3://payloads/", "which covers other clients' objects"},
		"dot segments": {dispatch(map[string]any{"in": "s3://payloads/jobs/" + own.ID + "/../" + rival.ID + "/x"}),
			"s3://payloads/jobs/" + own.ID + "/../" + rival.ID + "/x", "which is not a valid blob reference"},
		"second parallel task": {blueprint.Outcome{Action: blueprint.ParallelAction{Tasks: []blueprint.Task{
			{Type: "peek", Params: map[string]any{"in": uri(own.ID, "a.bin")}},
			{Type: "peek", Params: map[string]any{"in": foreign}},
		}}}, foreign, "which belongs to another client"},
	}
	for name, tc := range refused {
		err := en.e.checkParamRefs(en.ctx, own, tc.out)
		var re *refError
		if !errors.As(err, &re) || !errors.Is(err, blueprint.ErrMisuse) {
			t.Errorf("%s: %v, want a refusal", name, err)
			continue
		}
		want := `state "wait": task "peek" params reference ` + tc.ref + " " + tc.reason
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %q, want %q", name, err, want)
		}
	}

	// A store failure is no refusal: the step is retried.
	err = en.e.checkParamRefs(en.ctx, own, dispatch(map[string]any{"in": uri("broken-store-id", "a.bin")}))
	if err == nil || errors.Is(err, blueprint.ErrMisuse) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("store failure: %v", err)
	}
}

// TestCheckParamRefsWithoutBlobStorage: without blob storage of its own,
// the orchestrator guards the default bucket, where SDK workers upload the
// files of jobs.
func TestCheckParamRefsWithoutBlobStorage(t *testing.T) {
	t.Parallel()
	en := newEnv(t, Config{}, holdBP()...)
	own := en.createFor("acme", "hold", nil)
	rival := en.createFor("rival", "hold", nil)
	out := func(ref string) blueprint.Outcome {
		return blueprint.Outcome{Action: blueprint.DispatchAction{Task: blueprint.Task{Type: "peek", Params: map[string]any{"in": ref}}}}
	}
	if err := en.e.checkParamRefs(en.ctx, own, out(blob.NewURI(blob.DefaultBucket, blob.JobKey(rival.ID, "x")))); !errors.Is(err, blueprint.ErrMisuse) {
		t.Errorf("another client's file in the default bucket: %v", err)
	}
	if err := en.e.checkParamRefs(en.ctx, own, out(blob.NewURI(blob.DefaultBucket, blob.JobKey(own.ID, "x")))); err != nil {
		t.Errorf("own file: %v", err)
	}
}

// TestForeignParamRefsFailTheJob: a job whose task params refer to another
// client's file fails at once with a clear message and nothing reaches a
// worker; the same params referring to the client's own earlier job run.
// A job that expired from the live store counts as another client's (the
// engine cannot tell its owner).
func TestForeignParamRefsFailTheJob(t *testing.T) {
	t.Parallel()
	blobs, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fwd := blueprint.New("fwd").Start("start", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "peek", Params: map[string]any{"inputs": c.Input("inputs")}})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "finished")).End("finished", nil)
	quick := blueprint.New("quick").Start("start", func(c *blueprint.Context) error {
		return c.GoTo("finished")
	}, blueprint.To("finished")).End("finished", nil)
	en := newEnv(t, Config{Store: memory.New(memory.Options{Retention: 200 * time.Millisecond}), Blobs: blobs},
		append(holdBP(), fwd, quick)...)
	w := en.start(&fakeWorker{id: "w1", skills: map[string]float64{"peek": 0}, handle: ok(map[string]any{"seen": true})})

	owned := en.createFor("acme", "hold", nil)
	foreign := blob.NewURI(blobs.Bucket(), blob.JobKey(owned.ID, "input.bin"))
	j := en.waitEnd(en.createFor("rival", "fwd", map[string]any{"inputs": []any{foreign}}).ID)
	want := `state "start": task "peek" params reference ` + foreign + " which belongs to another client"
	if j.Status != protocol.StatusFailed || j.ErrorMessage != want || len(j.Dispatches) != 0 {
		t.Fatalf("rival's job: %s, %d dispatches; want failed with %q", summary(j), len(j.Dispatches), want)
	}

	j = en.waitEnd(en.createFor("acme", "fwd", map[string]any{"inputs": []any{foreign}}).ID)
	if j.Status != protocol.StatusFinished || j.StateHistory["seen"] != true {
		t.Fatalf("owner's job: %s", summary(j))
	}
	if n := w.runs.Load(); n != 1 {
		t.Fatalf("the worker ran %d tasks, want only the owner's", n)
	}

	gone := en.waitEnd(en.createFor("acme", "quick", nil).ID)
	deadline := time.Now().Add(5 * time.Second)
	for _, err := en.e.GetJob(en.ctx, gone.ID); err == nil; _, err = en.e.GetJob(en.ctx, gone.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the job never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	expired := blob.NewURI(blobs.Bucket(), blob.JobKey(gone.ID, "old.bin"))
	j = en.waitEnd(en.createFor("acme", "fwd", map[string]any{"inputs": []any{expired}}).ID)
	if j.Status != protocol.StatusFailed || !strings.Contains(j.ErrorMessage, "which belongs to another client") {
		t.Fatalf("job referring to an expired job: %s", summary(j))
	}
	if n := w.runs.Load(); n != 1 {
		t.Fatalf("the worker ran %d tasks", n)
	}
}
