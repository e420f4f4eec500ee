package historytest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// stamped is the event of snapshot j recorded in live store store.
func stamped(j *protocol.Job, store string) history.Event {
	ev := jobEvent(j)
	ev.LiveStore = store
	return ev
}

func testLiveStores(t *testing.T, s history.Store) {
	ctx := ctxFor(t)
	ls, ok := s.(history.LiveStores)
	if !ok {
		t.Fatalf("%T does not implement history.LiveStores", s)
	}
	must(t, s.Append(ctx, []history.Event{
		stamped(snapshot("job-a", "acme", "bp", protocol.StatusPending, at(0), at(0)), "store-a"),
		stamped(snapshot("job-b", "acme", "bp", protocol.StatusRunning, at(1), at(1)), "store-b"),
		stamped(snapshot("job-c", "acme", "bp", protocol.StatusFinished, at(2), at(2)), "store-c"),
		stamped(snapshot("job-d", "acme", "bp", protocol.StatusWaitingForHuman, at(3), at(3)), "store-d"),
		jobEvent(snapshot("job-old", "acme", "bp", protocol.StatusWaitingForWorker, at(4), at(4))),
	}))
	must(t, ls.SeeLiveStore(ctx, "store-a", at(10)))
	must(t, ls.SeeLiveStore(ctx, "store-b", at(5)))
	must(t, ls.SeeLiveStore(ctx, "store-b", at(3))) // older: last_seen stays
	stale := func(before int, want ...string) {
		t.Helper()
		got, err := ls.StaleLiveStores(ctx, at(before))
		must(t, err)
		if !slices.Equal(got, want) {
			t.Fatalf("stale live stores before %d: %q, want %q", before, got, want)
		}
	}
	// store-c holds only a finished job; store-d was never seen.
	stale(8, "store-b", "store-d")
	stale(5, "store-d")

	of := func(store string, want ...string) {
		t.Helper()
		jobs, _, err := s.ListJobs(ctx, history.JobFilter{LiveStore: &store})
		must(t, err)
		if got := ids(jobs); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("jobs of live store %q: %q, want %q", store, got, want)
		}
	}
	of("store-a", "job-a")
	of("", "job-old")
	// A summary without a live store keeps the recorded one; one with a
	// live store moves the job to it (a lost job failed by another store).
	must(t, s.Append(ctx, []history.Event{
		jobEvent(snapshot("job-a", "acme", "bp", protocol.StatusRunning, at(0), at(6))),
		stamped(snapshot("job-b", "acme", "bp", protocol.StatusFailed, at(1), at(6)), "store-a"),
	}))
	of("store-a", "job-b", "job-a")
	of("store-b")
	stale(8, "store-d")
}
