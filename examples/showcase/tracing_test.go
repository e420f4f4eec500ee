package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// otlpSpan is a span as an OTLP/HTTP receiver decodes it.
type otlpSpan struct {
	service, name       string
	trace, id, parentID string
}

// otlpReceiver is a minimal OTLP/HTTP trace endpoint: it decodes the
// protobuf export requests and keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []otlpSpan
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, decodeSpan(service, s))
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decodeSpan(service string, s *tracepb.Span) otlpSpan {
	return otlpSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId),
		id: hex.EncodeToString(s.SpanId), parentID: hex.EncodeToString(s.ParentSpanId)}
}

func (r *otlpReceiver) all() []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otlpSpan(nil), r.spans...)
}

// TestTraceAcrossProcesses runs the orchestrator and a worker as separate
// processes exporting to a real OTLP/HTTP endpoint: the worker's task span
// is a child of the orchestrator's dispatch span, in the trace that the job's
// creation started.
func TestTraceAcrossProcesses(t *testing.T) {
	t.Parallel()
	bin := showcaseBinary(t)
	rcv := &otlpReceiver{}
	otlp := httptest.NewServer(rcv)
	defer otlp.Close()
	apiPort := testenv.FreePort(t)
	d := &deployment{t: t, bin: bin, api: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	d.env = []string{fmt.Sprintf("API_PORT=%d", apiPort), fmt.Sprintf("WEBHOOK_PORT=%d", testenv.FreePort(t)), "ORCHESTRATOR_URL=" + d.api,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL, "OTEL_BSP_SCHEDULE_DELAY=100", "DETERMINISTIC_WORKER=true",
		"DETERMINISTIC_BLUEPRINT=true", "SHOWCASE_TIME_SCALE=0.05", "WORKER_PORT=0", "HISTORY_DATABASE_URI=none", "BLOB_DIR=none"}
	d.start("orchestrator", []string{"OTEL_SERVICE_NAME=orchestrator-under-test"}, "orchestrator")
	d.start("worker gpu", []string{"OTEL_SERVICE_NAME=gpu-worker-under-test"}, "worker", "gpu")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := client.New(d.api, "user_token_vip")
	testenv.WaitUntil(t, "the worker", 30*time.Second, func() bool { ws, err := c.Workers(ctx); return err == nil && len(ws) == 1 })
	id, err := c.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"quality": "low"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Wait(ctx, id, client.PollEvery(50*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("job: %+v %v", j, err)
	}
	var task, dispatch, create otlpSpan
	testenv.WaitUntil(t, "the spans", 20*time.Second, func() bool {
		byID := map[string]otlpSpan{}
		for _, s := range rcv.all() {
			byID[s.id] = s
		}
		for _, s := range byID {
			if s.service == "gpu-worker-under-test" && s.name == "task transcode_video" {
				task = s
				dispatch = byID[s.parentID]
			}
		}
		for _, s := range byID {
			if s.name == "job.create full_showcase" && s.trace == task.trace {
				create = s
			}
		}
		return task.id != "" && dispatch.id != "" && create.id != ""
	})
	if dispatch.service != "orchestrator-under-test" || dispatch.name != "dispatch transcode_video" || dispatch.trace != task.trace {
		t.Fatalf("the worker's span has parent %+v", dispatch)
	}
	if create.service != "orchestrator-under-test" {
		t.Fatalf("job creation span %+v", create)
	}
}
