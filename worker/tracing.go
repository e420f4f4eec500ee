package worker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// startSpan opens the task's span, continuing the trace whose W3C context
// the orchestrator put in the payload.
func (w *Worker) startSpan(ctx context.Context, p protocol.TaskPayload) (context.Context, trace.Span) {
	tp := w.cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if len(p.TracingContext) > 0 {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(p.TracingContext))
	}
	ctx, span := tp.Tracer("github.com/avtomatika-ai/avtomatika-go/worker").Start(ctx, "task "+p.Type,
		trace.WithSpanKind(trace.SpanKindConsumer))
	// Made only when the span records: without a tracer, every task would
	// build them for nothing.
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("avtomatika.task.id", p.TaskID), attribute.String("avtomatika.job.id", p.JobID),
			attribute.Int("avtomatika.task.attempt", p.Attempt), attribute.String("avtomatika.worker.id", w.cfg.ID),
		)
	}
	return ctx, span
}

func endSpan(span trace.Span, res protocol.TaskResult) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("avtomatika.task.status", res.Status))
		if res.Error != nil {
			span.SetStatus(codes.Error, res.Error.Code+": "+res.Error.Message)
		}
	}
	span.End()
}
