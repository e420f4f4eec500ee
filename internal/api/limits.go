package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
)

// allowClient applies the client's fixed-window rate limit. The window is
// aligned to the period, so it does not slide on every hit; a refused
// request gets 429 with Retry-After. Store errors let the request through.
func (s *Server) allowClient(w http.ResponseWriter, r *http.Request, cl *auth.Client) bool {
	limit := s.opts.RateLimit
	if cl.RateLimit > 0 {
		limit = cl.RateLimit
	}
	if limit <= 0 {
		return true
	}
	now := time.Now()
	start := now.Truncate(s.opts.RatePeriod)
	end := start.Add(s.opts.RatePeriod)
	key := "ratelimit:client:" + cl.Name + ":" + strconv.FormatInt(start.Unix(), 10)
	n, err := s.store.Incr(r.Context(), key, 1, end.Add(time.Second))
	if err != nil {
		s.log.Warn("rate limit check failed; letting the request through", "client", cl.Name, "error", err)
		return true
	}
	if n > int64(limit) {
		retry := int(math.Ceil(end.Sub(now).Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(retry, 1)))
		writeError(w, http.StatusTooManyRequests, "Too Many Requests: %d requests per %s allowed", limit, s.opts.RatePeriod)
		return false
	}
	return true
}

// quotaKey names a client's job-creation counter for the calendar month
// (UTC) of now; a new month starts a new counter.
func quotaKey(client string, now time.Time) (key string, monthEnd time.Time) {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return "quota:" + client + ":" + start.Format("2006-01"), start.AddDate(0, 1, 0)
}

// consumeQuota counts a job creation against the client's monthly quota.
func (s *Server) consumeQuota(w http.ResponseWriter, r *http.Request, cl *auth.Client) bool {
	if cl.MonthlyAttempts <= 0 {
		return true
	}
	now := time.Now()
	key, monthEnd := quotaKey(cl.Name, now)
	// The counter outlives its month by a while so that it can be inspected.
	used, ok, err := s.store.IncrIfBelow(r.Context(), key, cl.MonthlyAttempts, monthEnd.AddDate(0, 1, 0))
	if err != nil {
		s.fail(w, r, fmt.Errorf("check quota: %w", err))
		return false
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(monthEnd.Sub(now).Seconds()))))
		writeError(w, http.StatusTooManyRequests, "Quota exceeded: %d of %d job creations used this month (plan %s); it resets at %s",
			used, cl.MonthlyAttempts, cl.Plan, monthEnd.Format(time.RFC3339))
		return false
	}
	return true
}

// refundQuota gives back an attempt whose job could not be created.
func (s *Server) refundQuota(r *http.Request, cl *auth.Client) {
	if cl.MonthlyAttempts <= 0 {
		return
	}
	key, monthEnd := quotaKey(cl.Name, time.Now())
	if _, err := s.store.Incr(r.Context(), key, -1, monthEnd.AddDate(0, 1, 0)); err != nil {
		s.log.Warn("refund quota", "client", cl.Name, "error", err)
	}
}
