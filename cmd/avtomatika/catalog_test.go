package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// registerWorker registers a worker over the real RXON protocol.
func (s *testServer) registerWorker(t *testing.T, id string) {
	t.Helper()
	reg := protocol.Registration{
		WorkerID:        id,
		WorkerType:      "cpu",
		SupportedSkills: []protocol.SkillInfo{{Name: "analyze_file"}, {Name: "resize"}},
		Timestamp:       time.Now().Unix(),
	}
	sig, err := protocol.Sign(reg, workerSecret)
	if err != nil {
		t.Fatal(err)
	}
	reg.Security = &protocol.Security{Signature: sig, SignerID: id}
	body, err := json.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+protocol.PathRegister, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderWorkerToken, workerSecret)
	req.Header.Set(protocol.HeaderWorkerID, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register worker: %s", resp.Status)
	}
}

func TestWorkersList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	r := s.cli(t, "workers", "list")
	mustCode(t, r, 0)
	if r.stdout != "" || r.stderr != "No workers registered.\n" {
		t.Errorf("no workers: %s", r)
	}
	r = s.cli(t, "workers", "list", "--json")
	mustCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("no workers --json: %s", r)
	}

	s.registerWorker(t, "cpu-worker-1")
	r = s.cli(t, "workers", "list")
	mustCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table: %s", r)
	}
	for _, want := range []string{"cpu-worker-1", "cpu", "analyze_file,resize"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row lacks %q: %q", want, lines[1])
		}
	}
	r = s.cli(t, "workers", "list", "--json")
	mustCode(t, r, 0)
	if w := decodeJSON[[]protocol.WorkerInfo](t, r); len(w) != 1 || w[0].WorkerID != "cpu-worker-1" {
		t.Errorf("workers --json: %+v", w)
	}
}

func TestBlueprintsList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	r := s.cli(t, "blueprints", "list")
	mustCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("table: %s", r)
	}
	if !strings.Contains(r.stdout, "/api/v1/jobs/review") || !strings.Contains(r.stdout, "finished,rejected") {
		t.Errorf("table: %s", r)
	}

	r = s.cli(t, "blueprints", "list", "--json")
	mustCode(t, r, 0)
	bps := decodeJSON[[]protocol.BlueprintInfo](t, r)
	var names []string
	for _, bp := range bps {
		names = append(names, bp.Name)
	}
	if strings.Join(names, ",") != "child,doomed,flaky,quick,review" {
		t.Errorf("blueprints: %v", names)
	}
}

func TestBlueprintsGraph(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	r := s.cli(t, "blueprints", "graph", "review")
	mustCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "digraph") || !strings.Contains(r.stdout, "approved") {
		t.Errorf("dot: %s", r)
	}
	dot := r.stdout
	r = s.cli(t, "blueprints", "graph", "review", "--format", "dot")
	mustCode(t, r, 0)
	if r.stdout != dot {
		t.Errorf("--format dot differs from the default")
	}

	r = s.cli(t, "blueprints", "graph", "review", "--format=mermaid")
	mustCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "stateDiagram-v2\n") || !strings.Contains(r.stdout, ": approved") {
		t.Errorf("mermaid: %s", r)
	}
}

// TestBlueprintsGraphSVG renders SVG with no Graphviz on PATH: the CLI
// lays the graph out itself.
func TestBlueprintsGraphSVG(t *testing.T) {
	s := newTestServer(t)
	t.Setenv("PATH", t.TempDir()) // no dot there
	r := s.cli(t, "blueprints", "graph", "review", "--format", "svg")
	mustCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "<?xml") || !strings.Contains(r.stdout, "<svg") || !strings.Contains(r.stdout, "approved") ||
		!strings.HasSuffix(strings.TrimSpace(r.stdout), "</svg>") {
		t.Errorf("svg: %.300s", r.stdout)
	}
	r = s.cli(t, "blueprints", "graph", "nosuch", "--format", "svg")
	if r.code == 0 || r.stdout != "" {
		t.Errorf("unknown blueprint: %s", r)
	}
}
