package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// countedReads counts the job reads that reach a store, and the task
// records the writes put.
type countedReads struct {
	store.Store
	reads, taskPuts atomic.Int64
}

func (s *countedReads) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	s.taskPuts.Add(int64(len(j.Changes().PutTasks)))
	return s.Store.UpdateJob(ctx, j, fx)
}

func (s *countedReads) GetJob(ctx context.Context, id string) (*store.Job, error) {
	s.reads.Add(1)
	return s.Store.GetJob(ctx, id)
}

func (s *countedReads) LoadJob(ctx context.Context, id string, taskIDs ...string) (*store.Job, error) {
	s.reads.Add(1)
	return s.Store.LoadJob(ctx, id, taskIDs...)
}

// A one-task job written by one process is picked up and finished from the
// copies the engine kept of its last writes: no job read reaches the store.
func TestRecentJobsSaveReads(t *testing.T) {
	t.Parallel()
	st := &countedReads{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: st}, oneTask())
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "one"})
	if err != nil {
		t.Fatal(err)
	}
	en.succeed("w1", 0)
	if n := st.reads.Load(); n != 0 {
		t.Fatalf("%d job reads reached the store for a pickup and a result", n)
	}
	if end := en.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// A copy made stale by another process changes no outcome. Process A
// creates the job and keeps a copy (task queued, attempt 1); process B
// picks the task up and retries it after the worker's transient failure
// (attempt 2). A's copy would make A's pickup of attempt 2 look like a
// task that moved on, which would drop it; A decides again on the stored
// job instead, and the job finishes through A.
func TestRecentJobsStaleCopy(t *testing.T) {
	t.Parallel()
	shared := memory.New(memory.Options{})
	a := newEnv(t, Config{Store: shared}, oneTask())
	b := newEnv(t, Config{Store: shared}, oneTask())
	a.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := a.e.CreateJob(a.ctx, NewJob{Blueprint: "one"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.e.NextTask(b.ctx, "w1", time.Second)
	if err != nil || p == nil {
		t.Fatalf("poll through B: %+v %v", p, err)
	}
	res := protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskFailure,
		Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "try again"}}
	if _, err := b.e.SubmitResult(b.ctx, "w1", res); err != nil {
		t.Fatal(err)
	}
	b.wait(j.ID, "attempt 2 queued", func(j *store.Job) bool {
		for _, run := range j.Tasks {
			return run.Attempt == 2 && run.State == store.TaskQueued
		}
		return false
	})
	a.succeed("w1", 2)
	if end := a.waitEnd(j.ID); end.Status != protocol.StatusFinished {
		t.Fatalf("job %s", summary(end))
	}
}

// A fan-out wider than store.SmallJob, written by one process, has its
// branches picked up and finished on views of the kept copy: only the
// fan-in, which needs every branch, reads the job from the store.
func TestRecentJobsViewsOfAFanOut(t *testing.T) {
	t.Parallel()
	const width = 12
	bp := fanOut("wide", width)
	st := &countedReads{Store: memory.New(memory.Options{})}
	en := newEnv(t, Config{Store: st}, bp)
	en.register(&fakeWorker{id: "w1", skills: map[string]float64{"work": 1}})
	j, err := en.e.CreateJob(en.ctx, NewJob{Blueprint: "wide"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range width {
		p := en.succeed("w1", 0)
		if i == 0 {
			// A repeated result is ignored: a guess that writes nothing,
			// decided again on a read, keeps the copy.
			resp, err := en.e.SubmitResult(en.ctx, "w1", protocol.TaskResult{JobID: p.JobID, TaskID: p.TaskID, Status: protocol.TaskSuccess})
			if err != nil || resp.Status != protocol.ResultIgnored {
				t.Fatalf("repeated result: %+v %v", resp, err)
			}
		}
	}
	end := en.waitEnd(j.ID)
	if end.Status != protocol.StatusFinished || len(end.Dispatches) != width {
		t.Fatalf("job %s, %d dispatches", summary(end), len(end.Dispatches))
	}
	// The repeated result's read, the fan-in's whole read, and waitEnd's.
	if n := st.reads.Load(); n > 5 {
		t.Fatalf("%d job reads reached the store for %d branches", n, width)
	}
	// A pickup writes its task, a result none: not every outstanding one.
	if n := st.taskPuts.Load(); n > 2*width {
		t.Fatalf("the writes put %d task records for %d branches", n, width)
	}
}
