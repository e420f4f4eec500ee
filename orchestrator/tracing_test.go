package orchestrator_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// TestOneTraceFromCreationToTheWorker records the spans of a job that
// dispatches a task: the API request, the job's creation and steps, the
// dispatch, and the worker's task all share one trace, with parent links in
// that order.
func TestOneTraceFromCreationToTheWorker(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	orchTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	workerTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, url := serveOrchestrator(t, orchestrator.Config{Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second,
		Clients: []orchestrator.Client{{Name: "c", Token: "ct"}}, TracerProvider: orchTP}, pipeline())
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(worker.Config{ID: "w1", Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(),
		TracerProvider: workerTP, PollTimeout: time.Second, Resources: worker.Resources{DisableDetection: true}})
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("prepare", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		return worker.Result{}, nil
	})
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(ctx) }()
	defer func() { cancel(); <-wdone }()

	c, _ := client.New(url, "ct")
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"path": "/x"})
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, c, id, protocol.StatusWaitingForHuman)
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if _, seen := spans[s.Name()]; !seen {
			spans[s.Name()] = s
		}
	}
	chain := []string{"POST /api/v1/jobs/pipeline", "job.create pipeline", "step pipeline/start", "dispatch prepare", "task prepare"}
	for i, name := range chain {
		s, ok := spans[name]
		if !ok {
			names := []string{}
			for n := range spans {
				names = append(names, n)
			}
			t.Fatalf("no span %q among %v", name, names)
		}
		if s.SpanContext().TraceID() != spans[chain[0]].SpanContext().TraceID() {
			t.Errorf("span %q is in another trace", name)
		}
		if i > 0 && s.Parent().SpanID() != spans[chain[i-1]].SpanContext().SpanID() {
			t.Errorf("span %q's parent is not %q", name, chain[i-1])
		}
	}
	if st := spans["step pipeline/review"]; st == nil || st.Parent().SpanID() != spans["job.create pipeline"].SpanContext().SpanID() {
		t.Error("later steps do not continue the job's trace")
	}
}
