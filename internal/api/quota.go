package api

import (
	"context"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// RestoreQuotas brings back monthly quota counts that the live store lost:
// each client with a quota is charged, for the calendar month (UTC) of
// now, the jobs that history shows it created that month before now (jobs
// it created itself: child jobs are not charged), at most its quota. The
// counter is raised to that number, never lowered, so a store that did not
// lose its counters (or has counted creations since) keeps them; a create
// that races the restore is counted on top. It returns the clients whose
// counters it raised, with the number charged back.
//
// The orchestrator calls it when the live store's deployment epoch is new
// (orchestrator/livestate.go): the store is new or lost its data, and its
// quota counters with it.
func RestoreQuotas(ctx context.Context, st store.Store, h history.Store, clients []auth.Client, now time.Time) (map[string]int64, error) {
	monthStart := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	raised := map[string]int64{}
	for _, cl := range clients {
		if cl.MonthlyAttempts <= 0 {
			continue
		}
		used, err := createdInHistory(ctx, h, cl, monthStart, now)
		if err != nil {
			return raised, err
		}
		if used == 0 {
			continue
		}
		k, monthEnd := quotaKey(cl.Name, now)
		expire := monthEnd.AddDate(0, 1, 0) // as consumeQuota keeps it
		counted, err := st.Incr(ctx, k, 0, expire)
		if err != nil {
			return raised, fmt.Errorf("restore quota of client %s: %w", cl.Name, err)
		}
		if used <= counted {
			continue
		}
		if _, err := st.Incr(ctx, k, used-counted, expire); err != nil {
			return raised, fmt.Errorf("restore quota of client %s: %w", cl.Name, err)
		}
		raised[cl.Name] = used - counted
	}
	return raised, nil
}

// createdInHistory counts the jobs (not child jobs) that client created in
// [from, to) by history, stopping at its quota.
func createdInHistory(ctx context.Context, h history.Store, cl auth.Client, from, to time.Time) (int64, error) {
	var n int64
	cursor := ""
	for n < cl.MonthlyAttempts {
		jobs, next, err := h.ListJobs(ctx, history.JobFilter{Client: cl.Name, From: from, To: to, Limit: history.MaxLimit, Cursor: cursor})
		if err != nil {
			return n, fmt.Errorf("count the jobs of client %s in history: %w", cl.Name, err)
		}
		for _, j := range jobs {
			if j.ParentJobID == "" {
				n++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return min(n, cl.MonthlyAttempts), nil
}
