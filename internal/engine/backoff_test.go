package engine

import (
	"math"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

func backoffEngine(t *testing.T, base, limit time.Duration) *Engine {
	t.Helper()
	e, err := New(Config{Store: memory.New(memory.Options{}), RetryBackoff: base, RetryBackoffMax: limit})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sampleBackoff draws backoff(n) many times and checks that every delay
// lies in [d/2, d] (equal jitter); it returns the smallest and largest.
func sampleBackoff(t *testing.T, e *Engine, n int, d time.Duration) (lo, hi time.Duration) {
	t.Helper()
	lo, hi = time.Duration(math.MaxInt64), 0
	for range 500 {
		got := e.backoff(n)
		if got < d/2 || got > d {
			t.Fatalf("backoff(%d) = %s, outside [%s, %s]", n, got, d/2, d)
		}
		lo, hi = min(lo, got), max(hi, got)
	}
	return lo, hi
}

// TestBackoffGrowsExponentially: retry n waits between half and all of
// RetryBackoff·2^(n-1), capped at RetryBackoffMax.
func TestBackoffGrowsExponentially(t *testing.T) {
	t.Parallel()
	e := backoffEngine(t, 100*time.Millisecond, 3*time.Second)
	for n, d := range map[int]time.Duration{
		1: 100 * time.Millisecond,
		2: 200 * time.Millisecond,
		3: 400 * time.Millisecond,
		4: 800 * time.Millisecond,
		5: 1600 * time.Millisecond,
		6: 3 * time.Second, // 3.2s, capped
		7: 3 * time.Second,
	} {
		lo, hi := sampleBackoff(t, e, n, d)
		// Jitter spreads the delays over the range: 500 uniform draws
		// all landing in one quarter of it would be a broken generator.
		if lo > d/2+d/8 || hi < d-d/8 {
			t.Errorf("backoff(%d) spans only [%s, %s] of [%s, %s]", n, lo, hi, d/2, d)
		}
	}
}

// TestBackoffJitterIsUniform: the mean of equal jitter is 3/4 of the delay.
func TestBackoffJitterIsUniform(t *testing.T) {
	t.Parallel()
	e := backoffEngine(t, time.Second, time.Minute)
	const draws = 4000
	var sum time.Duration
	for range draws {
		sum += e.backoff(1)
	}
	// The standard deviation of the mean is about 0.0023s; allow 0.02s.
	if mean := sum / draws; mean < 730*time.Millisecond || mean > 770*time.Millisecond {
		t.Fatalf("mean delay %s, want about 750ms", mean)
	}
}

// TestBackoffCapForHugeAttempts: however many retries, the delay stays in
// [max/2, max]: the shift must neither overflow nor wrap to a short delay.
func TestBackoffCapForHugeAttempts(t *testing.T) {
	t.Parallel()
	const limit = 30 * time.Second
	for _, base := range []time.Duration{time.Millisecond, 100 * time.Millisecond, time.Second, time.Hour, 24 * time.Hour} {
		e := backoffEngine(t, base, limit)
		for _, n := range []int{21, 22, 40, 63, 64, 65, 1000, math.MaxInt32, math.MaxInt} {
			sampleBackoff(t, e, n, limit)
		}
	}
	// A first delay above the cap is cut to the cap.
	sampleBackoff(t, backoffEngine(t, time.Minute, 10*time.Second), 1, 10*time.Second)
	// Without a practical cap the delay still never overflows.
	e := backoffEngine(t, time.Second, math.MaxInt64)
	for _, n := range []int{30, 64, 1000, math.MaxInt} {
		if got := e.backoff(n); got < time.Second {
			t.Errorf("backoff(%d) without a cap = %s", n, got)
		}
	}
}
