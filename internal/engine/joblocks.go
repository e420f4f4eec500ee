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
}

type jobLock struct {
	held chan struct{} // holds a token while the lock is taken
	refs int           // holders and waiters
}

// acquire takes the lock of a job, waiting until it is free or ctx ends.
func (l *jobLocks) acquire(ctx context.Context, id string) (release func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*jobLock{}
	}
	jl := l.locks[id]
	if jl == nil {
		jl = &jobLock{held: make(chan struct{}, 1)}
		l.locks[id] = jl
	}
	jl.refs++
	l.mu.Unlock()

	forget := func() {
		l.mu.Lock()
		if jl.refs--; jl.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
	select {
	case jl.held <- struct{}{}:
		return func() { <-jl.held; forget() }, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}
