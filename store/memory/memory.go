// Package memory is the in-process store backend: everything lives in maps
// under one mutex. It is the embedded default and the reference the Redis
// backend is tested against (both pass store/storetest).
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Options configures the store.
type Options struct {
	// Retention is how long a terminal job stays readable. Zero means 24h.
	Retention time.Duration
}

// Store implements store.Store in memory.
type Store struct {
	retention time.Duration

	mu        sync.Mutex
	jobs      map[string]*jobEntry
	lastSweep time.Time

	ready        []string
	readySet     map[string]bool
	leases       map[string]*lease
	readyWaiters []chan struct{}

	queues    map[string]*taskQueue
	queued    map[string]*store.QueuedTask // task id → entry, in its queue
	running   map[string]map[string]store.QueuedTask
	runningBy map[string]string // task id → worker
	assigned  map[string]int    // worker → tasks queued for it alone
	watchers  map[*watcher]struct{}

	timers    map[string]store.Timer
	timerHeap timerHeap

	workers    map[string]*store.Worker
	reputation map[string]float64

	counters map[string]*expiring[int64]
	values   map[string]*expiring[string]
	locks    map[string]*expiring[int64]
	fence    int64

	outbox outbox
	stats  stats // the console's figures (stats.go), under their own lock
}

// jobEntry is a job as the store keeps it: the header, and its parts as
// records of their own (see store.Parts).
type jobEntry struct {
	job        *store.Job // the header
	tasks      map[string]*store.TaskRun
	branches   map[string]store.Result
	done       map[string]string
	dispatches []store.Dispatch
	expireAt   time.Time // zero while the job is live
}

type lease struct {
	until time.Time
	dirty bool // marked ready again while leased
}

type expiring[T any] struct {
	v   T
	exp time.Time // zero: never
}

func (e *expiring[T]) alive(now time.Time) bool { return e.exp.IsZero() || now.Before(e.exp) }

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	return &Store{
		retention:  opts.Retention,
		jobs:       map[string]*jobEntry{},
		readySet:   map[string]bool{},
		leases:     map[string]*lease{},
		queues:     map[string]*taskQueue{},
		queued:     map[string]*store.QueuedTask{},
		running:    map[string]map[string]store.QueuedTask{},
		runningBy:  map[string]string{},
		assigned:   map[string]int{},
		watchers:   map[*watcher]struct{}{},
		timers:     map[string]store.Timer{},
		workers:    map[string]*store.Worker{},
		reputation: map[string]float64{},
		counters:   map[string]*expiring[int64]{},
		values:     map[string]*expiring[string]{},
		locks:      map[string]*expiring[int64]{},
	}
}

var _ store.Store = (*Store)(nil)

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// --- jobs ---

// CreateJob implements store.Jobs.
func (s *Store) CreateJob(_ context.Context, job *store.Job, fx store.Effects) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.sweep(now)
	if s.liveJob(job.ID, now) != nil {
		return fmt.Errorf("job %s: %w", job.ID, store.ErrExists)
	}
	if len(fx.Claims) > 0 {
		return fmt.Errorf("create job %s: a create takes no claim", job.ID)
	}
	if err := s.checkEffects(fx, now); err != nil {
		return err
	}
	job.Version = 1
	s.putJob(job, now)
	s.apply(job.ID, fx, now)
	return nil
}

// GetJob implements store.Jobs.
func (s *Store) GetJob(_ context.Context, id string) (*store.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.liveJob(id, time.Now())
	if e == nil {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	return e.assemble(), nil
}

// LoadJob implements store.Jobs.
func (s *Store) LoadJob(_ context.Context, id string, taskIDs ...string) (*store.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.liveJob(id, time.Now())
	if e == nil {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	if len(e.tasks)+len(e.branches)+len(e.done)+len(e.dispatches) <= store.SmallJob {
		return e.assemble(), nil
	}
	j := e.job.Clone()
	j.LoadTasks(e.tasks, e.done, taskIDs...)
	return j, nil
}

// assemble returns a copy of the whole job, every part loaded.
func (e *jobEntry) assemble() *store.Job {
	c := e.job.Clone()
	var tasks map[string]*store.TaskRun
	if len(e.tasks) > 0 {
		tasks = make(map[string]*store.TaskRun, len(e.tasks))
		for id, t := range e.tasks {
			tasks[id] = t.Clone()
		}
	}
	var branches map[string]store.Result
	if len(e.branches) > 0 {
		branches = make(map[string]store.Result, len(e.branches))
		for id, r := range e.branches {
			branches[id] = store.CloneResult(r)
		}
	}
	var done map[string]string
	if len(e.done) > 0 {
		done = maps.Clone(e.done)
	}
	return store.Assemble(c, tasks, branches, done, slices.Clone(e.dispatches))
}

// write stores a job's header and the changes of its parts.
func (e *jobEntry) write(job *store.Job) {
	ch := job.Changes()
	e.job = job.Header().Clone()
	if e.tasks == nil {
		e.tasks, e.branches, e.done = map[string]*store.TaskRun{}, map[string]store.Result{}, map[string]string{}
	}
	for _, t := range ch.PutTasks {
		e.tasks[t.ID] = t.Clone()
	}
	for _, id := range ch.DeleteTasks {
		delete(e.tasks, id)
	}
	for _, id := range ch.PutBranches {
		e.branches[id] = store.CloneResult(job.BranchResults[id])
	}
	for _, id := range ch.DeleteBranches {
		delete(e.branches, id)
	}
	for _, id := range ch.PutDone {
		e.done[id] = job.DoneTasks[id]
	}
	e.dispatches = append(e.dispatches, ch.AddDispatches...)
}

// UpdateJob implements store.Jobs.
func (s *Store) UpdateJob(_ context.Context, job *store.Job, fx store.Effects) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.sweep(now)
	e := s.liveJob(job.ID, now)
	if e == nil {
		return fmt.Errorf("job %s: %w", job.ID, store.ErrNotFound)
	}
	if e.job.Version != job.Version {
		return fmt.Errorf("job %s at version %d, stored %d: %w", job.ID, job.Version, e.job.Version, store.ErrConflict)
	}
	if err := s.checkEffects(fx, now); err != nil {
		return err
	}
	if err := s.checkClaims(fx.Claims); err != nil {
		return err
	}
	job.Version++
	s.putJob(job, now)
	for _, c := range fx.Claims {
		s.claim(c.TaskID, c.Worker)
	}
	s.apply(job.ID, fx, now)
	return nil
}

// ListJobs implements store.Jobs.
func (s *Store) ListJobs(_ context.Context, f store.JobFilter) ([]*store.Job, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var after *cursor
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		after = &c
	}
	s.mu.Lock()
	now := time.Now()
	var match []*store.Job
	for id := range s.jobs {
		e := s.liveJob(id, now)
		if e == nil {
			continue
		}
		j := e.job
		if (f.Client != "" && j.Client.Name != f.Client) || (f.Status != "" && string(j.Status) != f.Status) ||
			(f.Blueprint != "" && j.Blueprint != f.Blueprint) {
			continue
		}
		if after != nil && !after.before(j) {
			continue
		}
		match = append(match, j)
	}
	sort.Slice(match, func(a, b int) bool { return newer(match[a], match[b]) })
	next := ""
	if len(match) > limit {
		match = match[:limit]
		last := match[limit-1]
		next = cursor{last.CreatedAt.UnixNano(), last.ID}.String()
	}
	out := make([]*store.Job, len(match))
	for i, j := range match {
		out[i] = j.Clone()
	}
	s.mu.Unlock()
	return out, next, nil
}

func newer(a, b *store.Job) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

type cursor struct {
	nanos int64
	id    string
}

func (c cursor) String() string { return strconv.FormatInt(c.nanos, 10) + ":" + c.id }

// before reports whether j comes after the cursor in newest-first order.
func (c cursor) before(j *store.Job) bool {
	n := j.CreatedAt.UnixNano()
	return n < c.nanos || (n == c.nanos && j.ID < c.id)
}

func parseCursor(s string) (cursor, error) {
	n, id, ok := strings.Cut(s, ":")
	nanos, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil {
		return cursor{}, fmt.Errorf("invalid cursor %q", s)
	}
	return cursor{nanos, id}, nil
}

func (s *Store) liveJob(id string, now time.Time) *jobEntry {
	e, ok := s.jobs[id]
	if !ok {
		return nil
	}
	if !e.expireAt.IsZero() && !now.Before(e.expireAt) {
		delete(s.jobs, id)
		return nil
	}
	return e
}

// putJob writes a job over its entry (a new one for a created job) and
// records the write in job.Loaded.
func (s *Store) putJob(job *store.Job, now time.Time) {
	e := s.jobs[job.ID]
	if e == nil || job.Version == 1 {
		e = &jobEntry{}
		s.jobs[job.ID] = e
	}
	e.write(job)
	e.expireAt = time.Time{}
	if job.Status.Terminal() {
		e.expireAt = now.Add(s.retention)
	}
	job.Written()
}

// checkEffects refuses effects that cannot all apply: a bad reward, a taken
// once-key, a child id in use.
func (s *Store) checkEffects(fx store.Effects, now time.Time) error {
	for _, r := range fx.Rewards {
		if err := r.Check(); err != nil {
			return err
		}
	}
	if err := store.CheckOnces(fx.Onces); err != nil {
		return err
	}
	for _, o := range fx.Onces {
		if v, ok := s.values[o.Key]; ok && v.alive(now) {
			return fmt.Errorf("%s: %w", o.Key, store.ErrOnceTaken)
		}
	}
	if err := store.CheckHand(fx.Hand); err != nil {
		return err
	}
	for _, j := range fx.Create {
		if s.liveJob(j.ID, now) != nil {
			return fmt.Errorf("job %s: %w", j.ID, store.ErrExists)
		}
	}
	return nil
}

// sweep drops expired jobs and counters, at most once a second.
func (s *Store) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Second {
		return
	}
	s.lastSweep = now
	for id := range s.jobs {
		s.liveJob(id, now)
	}
	for k, c := range s.counters {
		if !c.alive(now) {
			delete(s.counters, k)
		}
	}
	for k, v := range s.values {
		if !v.alive(now) {
			delete(s.values, k)
		}
	}
}

// apply carries out the effects of a write of job jobID; the caller holds
// mu.
func (s *Store) apply(jobID string, fx store.Effects, now time.Time) {
	for _, j := range fx.Create {
		j.Version = 1
		s.putJob(j, now)
	}
	for _, id := range fx.Remove {
		s.removeTask(id)
	}
	for _, q := range fx.Enqueue {
		s.enqueue(q)
	}
	for _, q := range fx.Hand {
		s.removeTask(q.Run.ID)
		s.run(q.Clone())
	}
	for _, key := range fx.Cancel {
		delete(s.timers, key)
	}
	for _, t := range fx.Timers {
		s.addTimer(t)
	}
	for _, r := range fx.Ready {
		s.pushReady(r)
	}
	for _, o := range fx.Onces {
		e := &expiring[string]{v: o.Value}
		if o.TTL > 0 {
			e.exp = now.Add(o.TTL)
		}
		s.values[o.Key] = e
	}
	for _, r := range fx.Rewards {
		r.Value, r.Before = s.adjustReputation(r.Worker, r.Delta, r.Initial, r.Floor, r.Ceiling)
		r.Applied = true
	}
	s.appendEvents(now, fx.Events)
	if fx.DoneReady {
		s.doneReady(jobID)
	}
}

// --- ready queue ---

// PushReady implements store.ReadyQueue.
func (s *Store) PushReady(_ context.Context, ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.pushReady(id)
	}
	return nil
}

func (s *Store) pushReady(id string) {
	if l, ok := s.leases[id]; ok {
		l.dirty = true
		return
	}
	if s.readySet[id] {
		return
	}
	s.readySet[id] = true
	s.ready = append(s.ready, id)
	s.signalReady()
}

// signalReady wakes one waiting NextReady.
func (s *Store) signalReady() {
	if len(s.readyWaiters) == 0 {
		return
	}
	w := s.readyWaiters[0]
	s.readyWaiters = s.readyWaiters[1:]
	w <- struct{}{}
}

// NextReady implements store.ReadyQueue.
func (s *Store) NextReady(ctx context.Context, leaseFor time.Duration) (string, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		s.mu.Lock()
		now := time.Now()
		wakeAt := s.reclaimLeases(now)
		if len(s.ready) > 0 {
			id := s.ready[0]
			s.ready[0] = ""
			s.ready = s.ready[1:]
			delete(s.readySet, id)
			s.leases[id] = &lease{until: now.Add(leaseFor)}
			if len(s.ready) > 0 {
				s.signalReady() // keep the hand-off chain going
			}
			var version int64
			if e := s.liveJob(id, now); e != nil {
				version = e.job.Version
			}
			s.mu.Unlock()
			return id, version, nil
		}
		w := make(chan struct{}, 1)
		s.readyWaiters = append(s.readyWaiters, w)
		s.mu.Unlock()

		var timeout <-chan time.Time
		var timer *time.Timer
		if !wakeAt.IsZero() {
			timer = time.NewTimer(time.Until(wakeAt))
			timeout = timer.C
		}
		select {
		case <-w:
		case <-timeout:
			s.dropWaiter(w)
		case <-ctx.Done():
			s.dropWaiter(w)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// dropWaiter removes w from the waiters; if w was already signalled the
// signal is passed on so that no ready job waits for nobody.
func (s *Store) dropWaiter(w chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.readyWaiters, w); i >= 0 {
		s.readyWaiters = slices.Delete(s.readyWaiters, i, i+1)
		return
	}
	select {
	case <-w:
		if len(s.ready) > 0 {
			s.signalReady()
		}
	default:
	}
}

// reclaimLeases makes jobs with lapsed leases ready again and returns when
// the next lease lapses (zero if none).
func (s *Store) reclaimLeases(now time.Time) time.Time {
	var next time.Time
	for id, l := range s.leases {
		if !now.Before(l.until) {
			delete(s.leases, id)
			s.pushReady(id)
			continue
		}
		if next.IsZero() || l.until.Before(next) {
			next = l.until
		}
	}
	return next
}

// ExtendReady implements store.ReadyQueue.
func (s *Store) ExtendReady(_ context.Context, id string, leaseFor time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return fmt.Errorf("lease of job %s: %w", id, store.ErrNotFound)
	}
	l.until = time.Now().Add(leaseFor)
	return nil
}

// DoneReady implements store.ReadyQueue.
func (s *Store) DoneReady(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doneReady(id)
	return nil
}

func (s *Store) doneReady(id string) {
	l, ok := s.leases[id]
	if !ok {
		return
	}
	delete(s.leases, id)
	if l.dirty {
		s.pushReady(id)
	}
}
