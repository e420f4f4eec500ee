package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/internal/tracing"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

// logRecords decodes the JSON log lines written to b.
func logRecords(t *testing.T, b *testenv.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, rec)
	}
	return out
}

// brokenJobs is a store whose job reads fail while broken is set.
type brokenJobs struct {
	store.Store
	broken atomic.Bool
}

func (s *brokenJobs) GetJob(ctx context.Context, id string) (*store.Job, error) {
	if s.broken.Load() {
		return nil, errors.New("disk on fire")
	}
	return s.Store.GetJob(ctx, id)
}

func TestRequestErrorLogsNameJobAndTrace(t *testing.T) {
	t.Parallel()
	var logs testenv.Buffer
	st := &brokenJobs{Store: memory.New(memory.Options{})}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ts := newTestServerWith(t, func(c *engine.Config) { c.Store = st }, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.WrapHandler = func(h http.Handler) http.Handler { return tracing.TraceHTTP(tp, h) }
	})
	id := ts.createJob(vipToken, nil)
	st.broken.Store(true)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := ts.do("GET", "/api/v1/jobs/"+id, map[string]string{
		protocol.HeaderClientToken: vipToken,
		"traceparent":              "00-" + traceID + "-00f067aa0ba902b7-01",
	}, nil)
	if r.status != http.StatusInternalServerError || strings.Contains(string(r.body), "disk on fire") {
		t.Fatalf("a store failure: %d %s (the cause stays in the log)", r.status, r.body)
	}
	var found bool
	for _, rec := range logRecords(t, &logs) {
		if rec["msg"] != "request failed" {
			continue
		}
		found = true
		if rec["job_id"] != id || rec["trace_id"] != traceID || rec["error"] != "disk on fire" || rec["path"] != "/api/v1/jobs/"+id {
			t.Fatalf("log line %v: want job_id %s, trace_id %s and the cause", rec, id, traceID)
		}
	}
	if !found {
		t.Fatal("the failure was not logged")
	}
	if strings.Contains(logs.String(), vipToken) {
		t.Fatal("the client token was logged")
	}
}
