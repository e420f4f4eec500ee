//go:build unix

package console_test

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLiveStreams creates jobs at 200 per second over HTTP while 0 or
// 50 consoles (the admin's, which hear of every job) hold the live stream
// open, and reports the CPU the whole process used (orchestrator, the HTTP
// client and the 50 readers) as cpu-% of one core. What the consoles cost
// is the difference between the two.
//
//	go test -run '^$' -bench LiveStreams -benchtime 2000x ./internal/console/
func BenchmarkLiveStreams(b *testing.B) {
	for _, consoles := range []int{0, 50} {
		b.Run(fmt.Sprintf("consoles=%d", consoles), func(b *testing.B) {
			base := serve(b, baseConfig())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range consoles {
				br := newBrowser(b, base)
				br.login(adminToken)
				stream := openStream(b, ctx, br, "live")
				go func() { defer stream.Close(); _, _ = io.Copy(io.Discard, stream) }()
			}
			tick := time.NewTicker(5 * time.Millisecond) // 200 jobs/s
			defer tick.Stop()
			before, start := cpuTime(b), time.Now()
			for b.Loop() {
				<-tick.C
				createJob(b, base, aliceToken)
			}
			used, elapsed := cpuTime(b)-before, time.Since(start)
			b.ReportMetric(100*used.Seconds()/elapsed.Seconds(), "cpu-%")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
