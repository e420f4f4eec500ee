package engine

import (
	"context"
	"sync"
)

// jobLocks serialises this process's writes to one job. The writers of a
// busy job (the results of a fan-out arriving together) queue here rather
// than race in the store, where every lost race costs another read and
// write; writers in other processes are still stopped by the store's
// version check.
type jobLocks struct {
	mu    sync.Mutex
	locks map[string]*jobLock
	// free keeps locks no one holds or waits for, to be taken again: every
	// job write takes one.
	free []*jobLock
}

// maxFreeLocks bounds jobLocks.free: about the writes in flight at once.
const maxFreeLocks = 256

type jobLock struct {
	owner *jobLocks
	id    string
	held  chan struct{} // holds a token while the lock is taken
	refs  int           // holders and waiters
}

// acquire takes the lock of a job, waiting until it is free or ctx ends.
// The caller releases it.
func (l *jobLocks) acquire(ctx context.Context, id string) (*jobLock, error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*jobLock{}
	}
	jl := l.locks[id]
	if jl == nil {
		if n := len(l.free); n > 0 {
			jl, l.free = l.free[n-1], l.free[:n-1]
		} else {
			jl = &jobLock{owner: l, held: make(chan struct{}, 1)}
		}
		jl.id = id
		l.locks[id] = jl
	}
	jl.refs++
	l.mu.Unlock()

	select {
	case jl.held <- struct{}{}:
		return jl, nil
	case <-ctx.Done():
		jl.forget()
		return nil, ctx.Err()
	}
}

// release gives the lock up.
func (jl *jobLock) release() {
	<-jl.held
	jl.forget()
}

// forget drops a holder or waiter; the last one frees the lock, its token
// channel empty.
func (jl *jobLock) forget() {
	l := jl.owner
	l.mu.Lock()
	if jl.refs--; jl.refs == 0 {
		delete(l.locks, jl.id)
		if len(l.free) < maxFreeLocks {
			jl.id = ""
			l.free = append(l.free, jl)
		}
	}
	l.mu.Unlock()
}
