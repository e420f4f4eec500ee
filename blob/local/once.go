package local

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// SetOnceFunc records key for ttl if it is absent and reports whether it
// was: store.Store's SetOnce has this shape.
type SetOnceFunc func(ctx context.Context, key string, ttl time.Duration) (bool, error)

// SpendWith makes the store remember spent upload URLs through setOnce
// (such as the orchestrator's live store, shared by every orchestrator on
// it), so that a URL used at one orchestrator is refused at another that
// shares the folder and signing key. Without it the store remembers them
// in this process. Call it before serving Handler.
func (s *Store) SpendWith(setOnce SetOnceFunc) {
	s.spent.mu.Lock()
	s.spent.setOnce = setOnce
	s.spent.mu.Unlock()
}

// spentKeyPrefix namespaces spent URLs among SetOnce keys.
const spentKeyPrefix = "blob-put-spent:"

// spend records the use of a verified PUT URL (its query) and reports
// whether it was the first. The record lasts until the URL expires (and a
// little past it, for clocks that differ).
func (s *Store) spend(ctx context.Context, q url.Values) (bool, error) {
	sig := q.Get(qSignature)
	exp, _ := strconv.ParseInt(q.Get(qExpires), 10, 64) // verified before
	ttl := time.Until(time.Unix(exp, 0)) + time.Minute
	s.spent.mu.Lock()
	setOnce := s.spent.setOnce
	s.spent.mu.Unlock()
	if setOnce != nil {
		return setOnce(ctx, spentKeyPrefix+sig, ttl)
	}
	return s.spent.local(sig, time.Now().Add(ttl)), nil
}

// spentURLs remembers the signatures of spent upload URLs.
type spentURLs struct {
	mu      sync.Mutex
	setOnce SetOnceFunc
	until   map[string]time.Time // signature → when to forget it
	swept   time.Time
}

// local records sig in this process until the given time.
func (sp *spentURLs) local(sig string, until time.Time) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := time.Now()
	if now.Sub(sp.swept) > time.Minute { // forget expired URLs now and then
		for k, t := range sp.until {
			if now.After(t) {
				delete(sp.until, k)
			}
		}
		sp.swept = now
	}
	if t, ok := sp.until[sig]; ok && now.Before(t) {
		return false
	}
	if sp.until == nil {
		sp.until = map[string]time.Time{}
	}
	sp.until[sig] = until
	return true
}
