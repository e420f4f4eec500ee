package engine

import (
	"context"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// pollerTTL is how long a polling worker's record is reused. A worker
// polls again after every task, and its record (skills, resources)
// changes only when it registers or sends a heartbeat, which refresh the
// cache in this process; other processes see such changes this late.
const pollerTTL = time.Second

// pollers caches the records of the workers polling this process.
type pollers struct {
	mu sync.Mutex
	m  map[string]cachedWorker
}

type cachedWorker struct {
	w     *store.Worker
	until time.Time
	// peekUntil: the worker claimed a pending head it may not run, so
	// its polls read heads before they claim until then (claimPending):
	// the claim's put-back wakes its polls, which would claim it again.
	peekUntil time.Time
}

// get returns a worker's record, from the cache while it is fresh: shared
// with the cache, read only.
func (p *pollers) get(ctx context.Context, st store.Store, id string) (*store.Worker, error) {
	now := time.Now()
	p.mu.Lock()
	c, ok := p.m[id]
	p.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.w, nil
	}
	w, err := st.GetWorker(ctx, id)
	if err != nil {
		p.forget(id)
		return nil, err
	}
	p.put(w)
	return w, nil
}

// put caches a record this process has just written.
func (p *pollers) put(w *store.Worker) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]cachedWorker{}
	}
	// Sweep expired entries now and then, so gone workers do not linger.
	if len(p.m) >= 64 && len(p.m)%64 == 0 {
		for id, c := range p.m {
			if now.After(c.until) {
				delete(p.m, id)
			}
		}
	}
	p.m[w.ID] = cachedWorker{w: w.Clone(), until: now.Add(pollerTTL), peekUntil: p.m[w.ID].peekUntil}
}

// peekFirst reports whether the worker's polls read pending heads before
// they claim one (see cachedWorker.peekUntil).
func (p *pollers) peekFirst(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Before(p.m[id].peekUntil)
}

// sawUnfit records that the worker claimed a pending head it may not run.
func (p *pollers) sawUnfit(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.m[id]; ok {
		c.peekUntil = time.Now().Add(pollerTTL)
		p.m[id] = c
	}
}

func (p *pollers) forget(id string) {
	p.mu.Lock()
	delete(p.m, id)
	p.mu.Unlock()
}

// rosterTTL is how long the list of live workers that dispatch decisions
// read is reused. Placing a task reads the workers' reputations and loads,
// which change with every task, but not their records, which change when a
// worker registers, sends a heartbeat or goes: this process drops the list
// then, other processes see such a change this late.
const rosterTTL = time.Second

// roster caches the live workers for dispatch decisions.
type roster struct {
	mu      sync.Mutex
	workers []*store.Worker
	until   time.Time
}

// get returns the live workers, from the cache while it is fresh: shared
// records, which callers read and never modify (a refresh replaces them,
// so none is copied per dispatch). Callers that find it stale wait for one
// read of the store.
func (r *roster) get(ctx context.Context, st store.Store) ([]*store.Worker, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); !now.Before(r.until) {
		workers, err := st.ListWorkers(ctx)
		if err != nil {
			return nil, err
		}
		r.workers, r.until = workers, now.Add(rosterTTL)
	}
	return r.workers, nil
}

// invalidate makes the next get read the store.
func (r *roster) invalidate() {
	r.mu.Lock()
	r.until = time.Time{}
	r.mu.Unlock()
}
