package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a test whose Fatalf is recorded, ending only the
// goroutine that called it, as testing.T's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// waitIn runs WaitUntil as a test of its own and returns what it failed
// with ("" when it returned).
func waitIn(timeout time.Duration, cond func() bool) string {
	r := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitUntil(r, "the condition", timeout, cond)
	}()
	<-done
	return r.msg
}

func TestWaitUntil(t *testing.T) {
	t.Parallel()
	calls := 0
	if msg := waitIn(5*time.Second, func() bool { calls++; return calls == 5 }); msg != "" || calls != 5 {
		t.Errorf("a condition that holds at its 5th call: %d calls, failed with %q", calls, msg)
	}
	start := time.Now()
	msg := waitIn(100*time.Millisecond, func() bool { return false })
	if !strings.Contains(msg, "timed out after 100ms waiting for the condition") {
		t.Errorf("a condition that never holds failed with %q", msg)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", waited)
	}
}
