// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// variables for the orchestrator and the worker SDK. Like package logging it
// stays free of orchestrator imports, so that workers do not link the
// engine.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Propagator carries W3C trace context in HTTP headers and task payloads.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// TracingEnabled reports whether the environment asks for trace export.
func TracingEnabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracing returns a tracer provider configured by the standard OpenTelemetry
// variables: with OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, spans are batched to that
// OTLP/HTTP endpoint, named by OTEL_SERVICE_NAME (defaultService when unset);
// otherwise it is the no-op provider: nothing is recorded or sent. Call
// shutdown to flush.
func Tracing(ctx context.Context, defaultService string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if !TracingEnabled() {
		return tracenoop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", defaultService)))
	if err != nil {
		return nil, nil, err
	}
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return provider, provider.Shutdown, nil
}

// Recording reports whether tp records spans (false for the no-op provider).
func Recording(tp trace.TracerProvider) bool {
	if tp == nil {
		return false
	}
	_, isNoop := tp.(tracenoop.TracerProvider)
	return !isNoop
}

// TraceHTTP wraps an HTTP handler in server spans named by route pattern,
// continuing a trace whose context arrives in the request headers. With a
// no-op provider it returns next unchanged.
func TraceHTTP(tp trace.TracerProvider, next http.Handler) http.Handler {
	if !Recording(tp) {
		return next
	}
	return otelhttp.NewHandler(next, "http",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}))
}
