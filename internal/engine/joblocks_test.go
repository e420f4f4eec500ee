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
			lock, err := l.acquire(ctx, "a")
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
			lock.release()
		})
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("%d writers held one job's lock at once", most)
	}

	// Other jobs do not wait; a waiter gives up with its context.
	lock, err := l.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.acquire(ctx, "b")
	if err != nil {
		t.Fatalf("another job's lock: %v", err)
	}
	other.release()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting on a held lock past the deadline: %v", err)
	}
	lock.release()

	l.mu.Lock()
	left, free := len(l.locks), len(l.free)
	l.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d locks left after every holder released", left)
	}
	if free == 0 {
		t.Fatal("no released lock kept for reuse")
	}

	// A lock taken again from the free ones is free: its token was given
	// back.
	quick, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	again, err := l.acquire(quick, "c")
	if err != nil {
		t.Fatalf("a reused lock: %v", err)
	}
	again.release()
}
