package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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

// The recent runs live in KeepRuns slots per schedule, so that recording a
// run is one atomic counter step and one write, never a read-modify-write
// of a shared list: orchestrators firing consecutive ticks at once cannot
// lose each other's runs. recentSeqKey numbers a schedule's runs; run n
// goes to slot n mod KeepRuns, overwriting the run KeepRuns before it.
func recentSeqKey(name string) string { return "scheduler:recent-seq:" + name }

func recentSlotKey(name string, slot int64) string {
	return "scheduler:recent:" + name + ":" + strconv.FormatInt(slot, 10)
}

// recentEntry is one slot's value: the run and its number, which orders
// runs of equal ticks.
type recentEntry struct {
	Seq int64 `json:"seq"`
	Run Run   `json:"run"`
}

// KeepRuns is how many of a schedule's latest runs RecentRuns returns.
const KeepRuns = 5

// RecentRuns returns a schedule's latest runs, newest tick first (at most
// KeepRuns; none before this list was kept: LastRun still has the last).
func (s *Scheduler) RecentRuns(ctx context.Context, name string) ([]Run, error) {
	entries := make([]recentEntry, 0, KeepRuns)
	for slot := range int64(KeepRuns) {
		raw, err := s.store.GetValue(ctx, recentSlotKey(name, slot))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scheduler: read recent runs of %s: %w", name, err)
		}
		var e recentEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("scheduler: decode recent run of %s: %w", name, err)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		if !entries[i].Run.Tick.Equal(entries[j].Run.Tick) {
			return entries[i].Run.Tick.After(entries[j].Run.Tick)
		}
		return entries[i].Seq > entries[j].Seq
	})
	runs := make([]Run, len(entries))
	for i, e := range entries {
		runs[i] = e.Run
	}
	return runs, nil
}

// recordRecent adds run to the schedule's recent runs.
func (s *Scheduler) recordRecent(ctx context.Context, name string, run Run) error {
	seq, err := s.store.Incr(ctx, recentSeqKey(name), 1, time.Time{})
	if err != nil {
		return fmt.Errorf("scheduler: number the run of %s: %w", name, err)
	}
	raw, err := json.Marshal(recentEntry{Seq: seq, Run: run})
	if err != nil {
		return fmt.Errorf("scheduler: encode the run of %s: %w", name, err)
	}
	if err := s.store.PutValue(ctx, recentSlotKey(name, seq%KeepRuns), string(raw), 0); err != nil {
		return fmt.Errorf("scheduler: record the run of %s: %w", name, err)
	}
	return nil
}

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
	if err := s.recordRecent(ctx, sc.Name, run); err != nil {
		s.log.Warn("scheduler: record recent runs", "schedule", sc.Name, "error", err)
	}
	s.onRun(sc, run)
}
