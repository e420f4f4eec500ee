package engine

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

var propagator = propagation.TraceContext{}

// traceCarrier stores a span context as a map, the form jobs and task
// payloads carry it in.
func traceCarrier(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := propagation.MapCarrier{}
	propagator.Inject(ctx, m)
	return m
}

// withTrace continues the trace stored in carrier, unless ctx already is in
// a span.
func withTrace(ctx context.Context, carrier map[string]string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() || len(carrier) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(carrier))
}

// startSpan starts a span of job j. Its attributes are made only when it
// records: without a tracer, every step would build them for nothing (a
// sampler therefore decides on the span's name and parent, not on them).
func (e *Engine) startSpan(ctx context.Context, name string, j *store.Job) (context.Context, trace.Span) {
	ctx, span := e.cfg.Tracer.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("avtomatika.job.id", j.ID),
			attribute.String("avtomatika.blueprint", j.Blueprint),
			attribute.String("avtomatika.state", j.CurrentState),
		)
	}
	return ctx, span
}
