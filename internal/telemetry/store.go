package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// expected errors are answers, not failures.
func expected(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, store.ErrExists) || errors.Is(err, context.Canceled)
}

// WrapStore measures the latency of the store's operations. Blocking calls
// (NextReady, WatchQueues) pass through unmeasured: their time is waiting,
// not work.
func (m *Metrics) WrapStore(s store.Store) store.Store { return &timedStore{Store: s, m: m} }

type timedStore struct {
	store.Store
	m *Metrics
}

func timed[T any](m *Metrics, op string, fn func() (T, error)) (T, error) {
	start := time.Now()
	v, err := fn()
	m.observeStore(op, start, err)
	return v, err
}

func timed0(m *Metrics, op string, fn func() error) error {
	start := time.Now()
	err := fn()
	m.observeStore(op, start, err)
	return err
}

func (t *timedStore) CreateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	return timed0(t.m, "create_job", func() error { return t.Store.CreateJob(ctx, j, fx) })
}

func (t *timedStore) GetJob(ctx context.Context, id string) (*store.Job, error) {
	return timed(t.m, "get_job", func() (*store.Job, error) { return t.Store.GetJob(ctx, id) })
}

func (t *timedStore) LoadJob(ctx context.Context, id string, taskIDs ...string) (*store.Job, error) {
	return timed(t.m, "load_job", func() (*store.Job, error) { return t.Store.LoadJob(ctx, id, taskIDs...) })
}

func (t *timedStore) UpdateJob(ctx context.Context, j *store.Job, fx store.Effects) error {
	return timed0(t.m, "update_job", func() error { return t.Store.UpdateJob(ctx, j, fx) })
}

func (t *timedStore) PushReady(ctx context.Context, ids ...string) error {
	return timed0(t.m, "push_ready", func() error { return t.Store.PushReady(ctx, ids...) })
}

func (t *timedStore) DoneReady(ctx context.Context, id string) error {
	return timed0(t.m, "done_ready", func() error { return t.Store.DoneReady(ctx, id) })
}

func (t *timedStore) PeekTasks(ctx context.Context, queue string, limit int) ([]store.QueuedTask, error) {
	return timed(t.m, "peek_tasks", func() ([]store.QueuedTask, error) { return t.Store.PeekTasks(ctx, queue, limit) })
}

func (t *timedStore) WorkerFigures(ctx context.Context, ids ...string) (store.WorkerFigures, error) {
	return timed(t.m, "worker_figures", func() (store.WorkerFigures, error) { return t.Store.WorkerFigures(ctx, ids...) })
}

func (t *timedStore) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	return timed(t.m, "claim_next", func() (*store.QueuedTask, error) { return t.Store.ClaimNext(ctx, queue, workerID) })
}

func (t *timedStore) ClaimTask(ctx context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	return timed(t.m, "claim_task", func() (*store.QueuedTask, error) { return t.Store.ClaimTask(ctx, taskID, workerID) })
}

func (t *timedStore) Loads(ctx context.Context) (map[string]int, error) {
	return timed(t.m, "loads", func() (map[string]int, error) { return t.Store.Loads(ctx) })
}

func (t *timedStore) DueTimers(ctx context.Context, now time.Time, limit int, visibility time.Duration) ([]store.Timer, error) {
	return timed(t.m, "due_timers", func() ([]store.Timer, error) { return t.Store.DueTimers(ctx, now, limit, visibility) })
}

func (t *timedStore) ListWorkers(ctx context.Context) ([]*store.Worker, error) {
	return timed(t.m, "list_workers", func() ([]*store.Worker, error) { return t.Store.ListWorkers(ctx) })
}

func (t *timedStore) GetWorker(ctx context.Context, id string) (*store.Worker, error) {
	return timed(t.m, "get_worker", func() (*store.Worker, error) { return t.Store.GetWorker(ctx, id) })
}

func (t *timedStore) PutWorker(ctx context.Context, w *store.Worker, ttl time.Duration) error {
	return timed0(t.m, "put_worker", func() error { return t.Store.PutWorker(ctx, w, ttl) })
}

func (t *timedStore) Reputations(ctx context.Context, ids ...string) (map[string]float64, error) {
	return timed(t.m, "reputations", func() (map[string]float64, error) { return t.Store.Reputations(ctx, ids...) })
}

func (t *timedStore) SetOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return timed(t.m, "set_once", func() (bool, error) { return t.Store.SetOnce(ctx, key, ttl) })
}

func (t *timedStore) Incr(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error) {
	return timed(t.m, "incr", func() (int64, error) { return t.Store.Incr(ctx, key, delta, expireAt) })
}

func (t *timedStore) IncrIfBelow(ctx context.Context, key string, limit int64, expireAt time.Time) (int64, bool, error) {
	start := time.Now()
	n, ok, err := t.Store.IncrIfBelow(ctx, key, limit, expireAt)
	t.m.observeStore("incr_if_below", start, err)
	return n, ok, err
}
