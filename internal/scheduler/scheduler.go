package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Run is one started job, as recorded in the store.
type Run struct {
	Tick  time.Time `json:"tick"`
	At    time.Time `json:"at"`
	JobID string    `json:"job_id,omitempty"`
	Error string    `json:"error,omitempty"`
}

// StartFunc creates the job of a schedule and returns its id.
type StartFunc func(ctx context.Context, s Schedule) (string, error)

// Scheduler runs schedules until its context ends.
type Scheduler struct {
	schedules []Schedule
	store     store.Store
	start     StartFunc
	log       *slog.Logger
	onRun     func(Schedule, Run)
	now       func() time.Time
}

// New returns a scheduler. onRun (may be nil) observes every started run.
func New(schedules []Schedule, st store.Store, start StartFunc, log *slog.Logger, onRun func(Schedule, Run)) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	if onRun == nil {
		onRun = func(Schedule, Run) {}
	}
	return &Scheduler{schedules: schedules, store: st, start: start, log: log, onRun: onRun, now: time.Now}
}

// Schedules returns the active schedules.
func (s *Scheduler) Schedules() []Schedule { return s.schedules }

func lastKey(name string) string { return "scheduler:last:" + name }

// LastRun returns a schedule's most recent run, if any.
func (s *Scheduler) LastRun(ctx context.Context, name string) (Run, bool, error) {
	raw, err := s.store.GetValue(ctx, lastKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, err
	}
	var r Run
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Run{}, false, err
	}
	return r, true, nil
}

// Run starts jobs on time until ctx ends. An interval schedule that never
// ran starts at once (its first tick is the current one); after that, each
// schedule starts at its ticks. Ticks missed while no orchestrator ran are
// not made up.
func (s *Scheduler) Run(ctx context.Context) {
	if len(s.schedules) == 0 {
		return
	}
	start := s.now()
	next := make([]time.Time, len(s.schedules))
	for i, sc := range s.schedules {
		next[i] = sc.Next(start)
		if sc.Interval > 0 {
			if _, ran, err := s.LastRun(ctx, sc.Name); err == nil && !ran {
				next[i] = sc.tickOf(start)
			}
		}
	}
	for {
		soonest := next[0]
		for _, t := range next[1:] {
			if t.Before(soonest) {
				soonest = t
			}
		}
		if wait := soonest.Sub(s.now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		now := s.now()
		for i, sc := range s.schedules {
			if next[i].After(now) {
				continue
			}
			s.fire(ctx, sc, next[i])
			next[i] = sc.Next(now)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// fire starts the job of one tick unless another orchestrator did.
func (s *Scheduler) fire(ctx context.Context, sc Schedule, tick time.Time) {
	ttl := 48 * time.Hour
	if sc.Interval > 0 {
		ttl = 2*sc.Interval + time.Minute
	}
	claim := "scheduler:tick:" + sc.Name + ":" + strconv.FormatInt(tick.UnixNano(), 10)
	won, err := s.store.SetOnce(ctx, claim, ttl)
	if err != nil {
		s.log.Error("scheduler: claim tick", "schedule", sc.Name, "error", err)
		return
	}
	if !won {
		return // another orchestrator started this tick
	}
	run := Run{Tick: tick.UTC(), At: s.now().UTC()}
	id, err := s.start(ctx, sc)
	if err != nil {
		run.Error = err.Error()
		s.log.Error("scheduler: start job", "schedule", sc.Name, "blueprint", sc.Blueprint, "error", err)
	} else {
		run.JobID = id
		s.log.Info("scheduler: job started", "schedule", sc.Name, "blueprint", sc.Blueprint, "job_id", id)
	}
	raw, _ := json.Marshal(run)
	if err := s.store.PutValue(ctx, lastKey(sc.Name), string(raw), 0); err != nil {
		s.log.Warn("scheduler: record run", "schedule", sc.Name, "error", err)
	}
	s.onRun(sc, run)
}
