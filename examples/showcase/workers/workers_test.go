package workers

import (
	"testing"
	"time"
)

func TestBetween(t *testing.T) {
	t.Parallel()
	random := Options{}
	for range 100 {
		if d := random.between(time.Second, time.Second); d != time.Second {
			t.Fatalf("empty range gave %v", d)
		}
		if d := random.between(500*time.Millisecond, 1500*time.Millisecond); d < 500*time.Millisecond || d >= 1500*time.Millisecond {
			t.Fatalf("out of range: %v", d)
		}
	}
	if d := (Options{Deterministic: true}).between(time.Second, 2*time.Second); d != time.Second {
		t.Fatalf("deterministic gave %v", d)
	}
}
