// Package store defines the live state of the orchestrator (jobs, the ready
// queue of job steps, task queues, durable timers, the worker registry and
// counters) as one interface, so that the engine runs unchanged on the
// in-memory backend (store/memory) and on Redis (store/redis). The behaviour
// every backend must have is written down as the conformance suite in
// store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors returned by every backend.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrOnceTaken: one of the write's Effects.Onces keys is taken;
	// nothing was written. The key's value (GetValue) says by what.
	ErrOnceTaken   = errors.New("once-key already taken")
	ErrConflict    = errors.New("version conflict")
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotHead: one of the write's Effects.Claims tasks is not near
	// enough the head of its queue; nothing was written.
	ErrNotHead = errors.New("task is not at the head of its queue")
)

// Effects are changes committed atomically together with a job write.
// They stay within the written job's tree (see TreeKey): a backend may
// refuse to create, mark ready or add a timer for a job of another tree.
type Effects struct {
	Create  []*Job       // further jobs to create (child jobs)
	Ready   []string     // jobs that need an executor step
	Enqueue []QueuedTask // tasks to put in queues
	// Hand puts tasks straight into their worker's running set
	// (QueuedTask.Worker), where a claim would move them from a queue: a
	// task handed at its dispatch to a poll of its worker that waits in
	// this process, its pickup written with its dispatch.
	Hand   []QueuedTask
	Remove []string // task ids to take out of queues and running sets
	Timers []Timer  // timers to add or move
	Cancel []string // timer keys to delete
	// Events are appended to the outbox in the same atomic step, so an
	// event exists exactly when the change it describes does.
	Events [][]byte
	// DoneReady ends the caller's lease on the written job after the
	// other effects, as ReadyQueue.DoneReady would, in the same round trip.
	DoneReady bool
	// Onces make the write conditional on value keys (as SetOnce keeps
	// them) being absent, and store them with the write: idempotency keys
	// and what they name (the job a request created, a result's replay
	// key). ErrOnceTaken when one exists, or when two name the same key.
	Onces []Once
	// Rewards add to workers' reputations, as Workers.AdjustReputation
	// would, in the same atomic step as the write, in their order:
	// applied exactly when the write is (a refused write, a conflict,
	// applies nothing). The store reports back in each, the way UpdateJob
	// bumps job.Version: on success, Applied and the reputation after it
	// (Value). A backend that keeps reputations apart from the job (a
	// sharded Redis store) leaves Applied false and writes no reputation:
	// the caller then adjusts it itself, after the write.
	Rewards []*Reward
	// Claims make an update conditional on tasks being near the head of
	// their queues and claim them for workers in the same atomic step, as
	// TaskQueues.ClaimNext would: pickups written with their claims, one
	// round trip. ErrNotHead when a task is not among the first
	// Claim.Within tasks of its queue (not counting the tasks claimed
	// before it in the list), or in none, or is claimed twice; nothing is
	// written then. With several shards of a queue (a sharded Redis store)
	// a task is counted in its shard's part. Creates take no claim.
	Claims []Claim
}

// CheckHand rejects tasks to hand (Effects.Hand) that name no worker.
func CheckHand(tasks []QueuedTask) error {
	for _, q := range tasks {
		if q.Worker == "" {
			return fmt.Errorf("hand task %s: no worker named", q.Run.ID)
		}
	}
	return nil
}

// Claim is a claim committed with a job write (Effects.Claims).
type Claim struct {
	Queue, TaskID, Worker string
	// Within is how near the head the task must be: among the first
	// Within tasks of the queue; 1 (or less): it heads the queue.
	Within int
}

// Reward is a reputation change committed with a job write
// (Effects.Rewards).
type Reward struct {
	Worker string
	// Delta is added to the reputation (Initial when the worker has none)
	// and the sum clamped to [Floor, Ceiling].
	Delta, Initial, Floor, Ceiling float64

	// Set by the store when the write succeeds.
	Applied bool    // the change was committed with the write
	Value   float64 // the reputation after it, when Applied
	Before  float64 // the reputation before it (Initial if none), when Applied
}

// Check rejects a reward that names no worker or whose figures are not
// finite numbers with Floor <= Ceiling.
func (r *Reward) Check() error {
	if r.Worker == "" {
		return errors.New("reward: no worker")
	}
	for _, f := range []float64{r.Delta, r.Initial, r.Floor, r.Ceiling} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("reward of %s: %v is not a finite number", r.Worker, f)
		}
	}
	if r.Floor > r.Ceiling {
		return fmt.Errorf("reward of %s: floor %v above ceiling %v", r.Worker, r.Floor, r.Ceiling)
	}
	return nil
}

// Once is a value key stored with a write, only if absent.
type Once struct {
	Key   string
	Value string
	TTL   time.Duration
}

// CheckOnces rejects once-keys of one write that name the same key: the
// second is taken by the first (ErrOnceTaken).
func CheckOnces(onces []Once) error {
	for i, o := range onces {
		for _, before := range onces[:i] {
			if before.Key == o.Key {
				return fmt.Errorf("%s: %w", o.Key, ErrOnceTaken)
			}
		}
	}
	return nil
}

// Store is the orchestrator's live state.
type Store interface {
	Jobs
	ReadyQueue
	TaskQueues
	Timers
	Workers
	Counters
	Outbox
	Stats

	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// JobFilter selects jobs for ListJobs.
type JobFilter struct {
	Client    string // owner client name; empty means any
	Status    string
	Blueprint string
	Limit     int    // 0 means 100
	Cursor    string // from a previous page
}

// SmallJob is the number of part records (tasks, branch results, final
// statuses and dispatches together) up to which LoadJob reads a job whole.
const SmallJob = 8

// Jobs stores job documents with optimistic concurrency.
type Jobs interface {
	// CreateJob stores a new job (Version becomes 1) and applies fx
	// atomically. ErrExists if the id is taken.
	CreateJob(ctx context.Context, job *Job, fx Effects) error
	// GetJob returns a copy of a job with every part (see Parts), or
	// ErrNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)
	// LoadJob returns a copy of a job's header with the outstanding tasks
	// named and the final statuses of those that ended (no other part), in
	// one consistent read, or ErrNotFound. A job with at most SmallJob part
	// records is returned whole (Loaded.All), as GetJob would: a step that
	// then needs all of it (ending the job) does not read it again.
	LoadJob(ctx context.Context, id string, taskIDs ...string) (*Job, error)
	// UpdateJob replaces a job whose stored Version equals job.Version,
	// increments the version (in job too) and applies fx, all atomically.
	// Of the job's parts it writes what changed since its read
	// (Job.Changes), and records the write in job.Loaded (Job.Written).
	// ErrConflict when the version moved on, ErrNotFound when it is gone.
	// A terminal job expires, with its parts, after the backend's retention.
	UpdateJob(ctx context.Context, job *Job, fx Effects) error
	// ListJobs returns jobs newest first (headers only), and a cursor for
	// the next page ("" on the last page).
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, string, error)
}

// ReadyQueue holds jobs that need an executor step. A job is in it at most
// once; taking it leases it, and a job marked ready while leased is handed
// out again only after the lease ends, so no two executors run one job at a
// time. A lease that is neither extended nor finished expires, and the job
// becomes ready again (crash recovery). Jobs are handed out in the order
// they were marked ready, at least among the jobs of one tree (see
// TreeKey); a sharded backend takes from its shards in turn.
type ReadyQueue interface {
	// PushReady marks jobs ready.
	PushReady(ctx context.Context, ids ...string) error
	// NextReady blocks until a job is ready, leases it and returns its id
	// and the version the job was stored at when it was taken (0 when it
	// no longer exists): a caller holding a copy of that version has what
	// a read would return.
	NextReady(ctx context.Context, lease time.Duration) (id string, version int64, err error)
	// ExtendReady renews a lease.
	ExtendReady(ctx context.Context, id string, lease time.Duration) error
	// DoneReady ends a lease.
	DoneReady(ctx context.Context, id string) error
}

// TaskQueues holds queued tasks and the tasks each worker is running.
type TaskQueues interface {
	// PeekTasks returns up to limit tasks of a queue in order, without
	// taking them.
	PeekTasks(ctx context.Context, queue string, limit int) ([]QueuedTask, error)
	// ClaimTask atomically takes a queued task for a worker, wherever it
	// waits, and records it as running on that worker. ErrNotFound if it
	// is no longer queued (taken, cancelled).
	ClaimTask(ctx context.Context, taskID, workerID string) (*QueuedTask, error)
	// ClaimNext atomically takes the first task of a queue for a worker,
	// as ClaimTask would; nil when the queue is empty. Polls racing for
	// one queue each get a different task.
	ClaimNext(ctx context.Context, queue, workerID string) (*QueuedTask, error)
	// ReleaseTask forgets a running task of a worker.
	ReleaseTask(ctx context.Context, workerID, taskID string) error
	// RunningTasks lists the tasks a worker has claimed and not released.
	RunningTasks(ctx context.Context, workerID string) ([]QueuedTask, error)
	// QueueLengths returns the number of tasks in each non-empty queue.
	QueueLengths(ctx context.Context) (map[string]int, error)
	// Loads returns, for each worker with any, the number of tasks queued
	// for it plus the number it is running.
	Loads(ctx context.Context) (map[string]int, error)
	// WatchQueues streams the names of queues that received tasks, from
	// this process or others, until ctx ends. Names may be coalesced;
	// none is lost.
	WatchQueues(ctx context.Context) (<-chan string, error)
}

// Timers are durable deadlines.
type Timers interface {
	// AddTimers adds timers, moving any with the same key.
	AddTimers(ctx context.Context, timers ...Timer) error
	// DueTimers claims up to limit timers due at now: it returns them and
	// moves them to now+visibility, so that if the claimer dies they fire
	// again. The claimer deletes them when done.
	DueTimers(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]Timer, error)
	// DeleteTimers removes timers by key.
	DeleteTimers(ctx context.Context, keys ...string) error
	// NextTimer returns when the earliest timer is due.
	NextTimer(ctx context.Context) (time.Time, bool, error)
}

// Workers is the worker registry. Records expire after their TTL unless
// refreshed; reputation outlives them.
type Workers interface {
	// PutWorker stores a worker record alive for ttl.
	PutWorker(ctx context.Context, w *Worker, ttl time.Duration) error
	// GetWorker returns a live worker, or ErrNotFound.
	GetWorker(ctx context.Context, id string) (*Worker, error)
	// ListWorkers returns every live worker.
	ListWorkers(ctx context.Context) ([]*Worker, error)
	// TouchWorker extends a live worker's TTL; false if it is unknown or expired.
	TouchWorker(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// DeleteWorker removes a worker record.
	DeleteWorker(ctx context.Context, id string) error
	// ExpiredWorkers returns, once each, the ids of workers whose TTL ran
	// out since the last call (from any process).
	ExpiredWorkers(ctx context.Context) ([]string, error)
	// Reputations returns the stored reputation of workers; absent ones
	// are left out.
	Reputations(ctx context.Context, ids ...string) (map[string]float64, error)
	// AdjustReputation adds delta to a worker's reputation (initial
	// defaults to 1), clamps it to [floor, ceil] and returns the new value.
	AdjustReputation(ctx context.Context, id string, delta, initial, floor, ceil float64) (float64, error)
	// SetReputation sets a worker's reputation.
	SetReputation(ctx context.Context, id string, value float64) error
	// WorkerFigures reads what changes with every task placed, in one go:
	// the stored reputations of the workers named (as Reputations) and
	// every worker's load (as TaskQueues.Loads).
	WorkerFigures(ctx context.Context, ids ...string) (WorkerFigures, error)
}

// WorkerFigures are workers' reputations and loads.
type WorkerFigures struct {
	Reputations map[string]float64 // absent: never set
	Loads       map[string]int
}

// OutboxEntry is one event of the outbox: an id the store assigns, which
// orders the entries, and the encoded event.
type OutboxEntry struct {
	ID   string
	Data []byte
}

// Outbox is the log of events that job writes commit (Effects.Events) or
// that are appended alone. Consumers read it by cursor, at least once, at
// their own pace; nothing a consumer does can hold up a job write. Entry
// ids have the form "<ms>-<seq>" (a Redis stream id), or are positions
// over the shards of a sharded outbox (JoinEventPosition), and grow with
// each entry read; CompareEventIDs orders them, MinEventID takes the
// earlier of two.
type Outbox interface {
	// AppendEvents appends events that belong to no job write. tree is an
	// id of the job tree the events concern (a job id; they are then read
	// in order with that tree's committed events), "" for events of no
	// job.
	AppendEvents(ctx context.Context, tree string, events ...[]byte) error
	// ReadEvents returns up to limit entries after the cursor ("" reads
	// from the oldest), oldest first: in the order written among the
	// entries of one job tree; a sharded outbox may return entries of
	// other trees written within the same millisecond (or, across servers,
	// within their clocks' skew, or the delay of the backend's wake-up messages) in either order, but never skips one. When there are none it waits up to
	// wait for the first to arrive, or until ctx ends (then it returns
	// no entries and no error).
	ReadEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]OutboxEntry, error)
	// LastEventID returns the id of the newest entry ever appended that is
	// still kept, "" when the outbox is empty.
	LastEventID(ctx context.Context) (string, error)
	// TrimEvents drops the entries with ids before the given one.
	TrimEvents(ctx context.Context, before string) error
	// EventCount returns how many entries the outbox keeps.
	EventCount(ctx context.Context) (int64, error)
}

// CompareEventIDs orders two outbox entry ids (-1, 0, +1); "" is before
// every id. An id that does not parse is compared as text.
//
// A sharded outbox (several streams) has position ids, "<owner>;<id>,<id>,..."
// (JoinEventPosition): one stream id per shard. Positions are compared
// shard by shard, a plain id standing for itself in every shard: 0 when
// all are equal, +1 when a is at or after b in every shard, else -1 (a is
// behind b somewhere). So "a >= b" means a consumer at a has seen
// everything up to b.
func CompareEventIDs(a, b string) int {
	if strings.Contains(a, ";") || strings.Contains(b, ";") {
		return comparePositions(a, b)
	}
	am, as, aok := parseEventID(a)
	bm, bs, bok := parseEventID(b)
	if !aok || !bok {
		return strings.Compare(a, b)
	}
	if am != bm {
		return cmpUint(am, bm)
	}
	return cmpUint(as, bs)
}

// MinEventID is the earliest of two ids, for trimming what every consumer
// has handled: of two positions, the earliest id of each shard.
func MinEventID(a, b string) string {
	if !strings.Contains(a, ";") && !strings.Contains(b, ";") {
		if CompareEventIDs(a, b) <= 0 {
			return a
		}
		return b
	}
	pa, pb := positionOf(a, b), positionOf(b, a)
	out := make([]string, len(pa))
	for i := range pa {
		out[i] = MinEventID(pa[i], pb[i])
	}
	return JoinEventPosition(-1, out)
}

// JoinEventPosition renders the position of a sharded outbox: the stream
// id reached in each shard ("" or "0-0": none), and the shard whose entry
// the position ends at (-1: none in particular).
func JoinEventPosition(owner int, ids []string) string {
	return strconv.Itoa(owner) + ";" + strings.Join(ids, ",")
}

// SplitEventPosition parses a position of n shards; a plain id stands for
// itself in every shard. False when it has another number of shards.
func SplitEventPosition(id string, n int) (owner int, ids []string, ok bool) {
	o, rest, found := strings.Cut(id, ";")
	if !found {
		ids = make([]string, n)
		for i := range ids {
			ids[i] = id
		}
		return -1, ids, true
	}
	owner, err := strconv.Atoi(o)
	ids = strings.Split(rest, ",")
	if err != nil || len(ids) != n || owner < -1 || owner >= n {
		return 0, nil, false
	}
	return owner, ids, true
}

// positionOf is id's per-shard ids, as many as other's when id is plain.
func positionOf(id, other string) []string {
	n := 1
	if _, rest, ok := strings.Cut(id, ";"); ok {
		n = strings.Count(rest, ",") + 1
	} else if _, rest, ok := strings.Cut(other, ";"); ok {
		n = strings.Count(rest, ",") + 1
	}
	_, ids, ok := SplitEventPosition(id, n)
	if !ok {
		return make([]string, n)
	}
	return ids
}

func comparePositions(a, b string) int {
	pa, pb := positionOf(a, b), positionOf(b, a)
	if len(pa) != len(pb) {
		return strings.Compare(a, b)
	}
	out := 0
	for i := range pa {
		switch CompareEventIDs(pa[i], pb[i]) {
		case -1:
			return -1
		case 1:
			out = 1
		}
	}
	return out
}

func parseEventID(id string) (ms, seq uint64, ok bool) {
	if id == "" {
		return 0, 0, true
	}
	l, r, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(l, 10, 64)
	seq, err2 := strconv.ParseUint(r, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Counters are small shared values: windows for rate limits and quotas,
// once-only keys for replay protection and idempotency, plain values with a
// TTL, and leases.
type Counters interface {
	// Incr adds delta to a counter that expires at expireAt (set when the
	// counter is created, never moved) and returns the new value.
	Incr(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error)
	// IncrIfBelow adds 1 when the counter is below limit; it returns the
	// value after the call and whether it was incremented.
	IncrIfBelow(ctx context.Context, key string, limit int64, expireAt time.Time) (int64, bool, error)
	// SetOnce stores key for ttl if absent and reports whether it did.
	SetOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// PutValue stores a value with a TTL (0 keeps it forever).
	PutValue(ctx context.Context, key, value string, ttl time.Duration) error
	// GetValue reads a value, or ErrNotFound.
	GetValue(ctx context.Context, key string) (string, error)
	// DeleteValue removes a value.
	DeleteValue(ctx context.Context, key string) error
	// AcquireLock takes a named lease for ttl unless someone holds it.
	AcquireLock(ctx context.Context, name string, ttl time.Duration) (Lock, bool, error)
	// RefreshLock extends a lease the caller still holds.
	RefreshLock(ctx context.Context, l Lock, ttl time.Duration) (bool, error)
	// ReleaseLock gives up a lease the caller still holds.
	ReleaseLock(ctx context.Context, l Lock) error
}
