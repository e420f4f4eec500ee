package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestJobLocks(t *testing.T) {
	t.Parallel()
	var l jobLocks
	ctx := context.Background()

	// One holder at a time per job; the counter would race otherwise.
	var wg sync.WaitGroup
	inside, most := 0, 0
	var mu sync.Mutex
	for range 50 {
		wg.Go(func() {
			release, err := l.acquire(ctx, "a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("%d writers held one job's lock at once", most)
	}

	// Other jobs do not wait; a waiter gives up with its context.
	release, err := l.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.acquire(ctx, "b")
	if err != nil {
		t.Fatalf("another job's lock: %v", err)
	}
	other()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting on a held lock past the deadline: %v", err)
	}
	release()

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.locks) != 0 {
		t.Fatalf("%d locks left after every holder released", len(l.locks))
	}
}
