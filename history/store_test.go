package history_test

import (
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// UnfinishedSQL lists exactly the statuses that are not terminal.
func TestUnfinishedSQL(t *testing.T) {
	all := []protocol.JobStatus{
		protocol.StatusPending, protocol.StatusRunning, protocol.StatusWaitingForWorker, protocol.StatusWaitingForHuman,
		protocol.StatusWaitingParallel, protocol.StatusWaitingForSubJob, protocol.StatusFinished, protocol.StatusFailed,
		protocol.StatusCancelled, protocol.StatusError, protocol.StatusQuarantined,
	}
	listed := 0
	for _, s := range all {
		in := strings.Contains(history.UnfinishedSQL, "'"+string(s)+"'")
		if in == s.Terminal() {
			t.Errorf("status %s: listed %v, terminal %v", s, in, s.Terminal())
		}
		if in {
			listed++
		}
	}
	if n := strings.Count(history.UnfinishedSQL, "'") / 2; n != listed {
		t.Errorf("UnfinishedSQL lists %d statuses, %d of them known", n, listed)
	}
}
