package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// A write of a view, applied to the whole copy the view came from, leaves
// the copy equal to what the store then reads whole.
func TestViewApplyMatchesTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := memory.New(memory.Options{})
	now := time.Now().UTC()
	j := &store.Job{ID: "fan", Blueprint: "bp", Status: protocol.StatusRunning, CurrentState: "start",
		InitialData: map[string]any{"n": 1.0}, StateHistory: map[string]any{}, CreatedAt: now, UpdatedAt: now,
		Tasks: map[string]*store.TaskRun{}, BranchesLeft: 10}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "k"} {
		j.Tasks[id] = &store.TaskRun{ID: id, Branch: true, Attempt: 1, State: store.TaskQueued, Spec: store.TaskSpec{Type: "work"}}
	}
	if err := s.CreateJob(ctx, j, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	whole, err := s.GetJob(ctx, "fan")
	if err != nil {
		t.Fatal(err)
	}
	// Branch b ends, c is picked up, and a dispatch is recorded.
	view := whole.View("b", "c", "missing")
	if len(view.Tasks) != 2 || view.Loaded.All {
		t.Fatalf("view holds %d tasks, all=%v", len(view.Tasks), view.Loaded.All)
	}
	delete(view.Tasks, "b")
	view.DoneTasks = map[string]string{"b": "success"}
	view.BranchResults = map[string]store.Result{"b": {TaskID: "b", Status: "success", Data: map[string]any{"x": 1.0}}}
	view.Tasks["c"].State, view.Tasks["c"].WorkerID = store.TaskRunning, "w1"
	view.Dispatches = append(view.Dispatches, store.Dispatch{TaskID: "c", Decision: store.Decision{WorkerID: "w1", Reason: "test"}})
	view.BranchesLeft, view.BranchesDone = 9, 1
	changes := view.Changes()
	if err := s.UpdateJob(ctx, view, store.Effects{}); err != nil {
		t.Fatal(err)
	}
	whole.Apply(view, changes)
	stored, err := s.GetJob(ctx, "fan")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(whole)
	want, _ := json.Marshal(stored)
	if string(got) != string(want) || whole.Version != stored.Version || !whole.Loaded.All {
		t.Fatalf("applied copy\n%s\nstore\n%s", got, want)
	}
	// The copy shares nothing with the view the caller keeps.
	view.Tasks["c"].WorkerID = "changed later"
	if whole.Tasks["c"].WorkerID != "w1" {
		t.Fatal("the copy shares a task with the view")
	}
}
