package testenv

import (
	"testing"
	"time"
)

// WaitUntil polls cond until it holds and fails the test if it still does
// not after timeout. It looks again after 1 ms, then less and less often,
// up to every 50 ms, so that a condition that holds soon is seen at once
// and one that asks a server is not asked in a busy loop.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pause)
	}
}
