package orchestrator

import "time"

// WithLiveStateTiming returns cfg with the live store checked every check
// and a live store not seen for stale counted as gone, so that tests need
// not wait a minute for it.
func WithLiveStateTiming(cfg Config, check, stale time.Duration) Config {
	cfg.liveCheckInterval, cfg.liveStaleAfter = check, stale
	return cfg
}
