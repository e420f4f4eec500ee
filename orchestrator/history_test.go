package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

func TestHistorySQLite(t *testing.T) {
	testHistory(t, "sqlite:"+filepath.Join(t.TempDir(), "history.db"))
}

func TestHistoryPostgres(t *testing.T) {
	url := testenv.URL(t, testenv.PostgresVar)
	schema := fmt.Sprintf("avto_orch_test_%d", time.Now().UnixNano())
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	testHistory(t, url+sep+"search_path="+schema)
}

// testHistory runs jobs through an orchestrator whose live store expires
// ended jobs quickly, then reads them back from history over HTTP.
func testHistory(t *testing.T, uri string) {
	o, err := orchestrator.New(orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: time.Second, HistoryURI: uri,
		Store:   memory.New(memory.Options{Retention: 300 * time.Millisecond}),
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}, {Name: "other", Token: "other-token"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = o.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-served
		if err := o.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	w, _ := worker.New(worker.Config{ID: "w1", Token: "tok", Orchestrators: []worker.Orchestrator{{URL: url}}, Logger: quiet(),
		PollTimeout: time.Second, Resources: worker.Resources{DisableDetection: true}})
	w.Handle("prepare", func(context.Context, *worker.Task) (worker.Result, error) { return worker.Result{}, nil }, worker.Price(0.5))
	w.Handle("analyze", func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		return worker.Result{Data: map[string]any{"file": task.Params()["file"]}}, nil
	})
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(ctx) }()
	defer func() { cancel(); <-wdone }()

	c, _ := client.New(url, "acme-token")
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"path": "/in.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := c.Job(ctx, id)
		if err == nil && j.Status == protocol.StatusWaitingForHuman {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no approval: %+v %v", j, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Approve(ctx, id, "approved"); err != nil {
		t.Fatal(err)
	}
	final, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
	if err != nil || final.Status != protocol.StatusFinished {
		t.Fatalf("job %+v %v", final, err)
	}

	events, err := c.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.EventType)
	}
	joined := strings.Join(types, ",")
	for _, want := range []string{"job_created", "state_entered", "task_dispatched", "task_started", "task_result", "approval", "job_ended"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history lacks %s: %v", want, types)
		}
	}
	if types[0] != "job_created" || types[len(types)-1] != "job_ended" {
		t.Errorf("history order: %v", types)
	}
	for _, e := range events {
		if e.EventType == "task_dispatched" {
			detail, _ := e.Fields["detail"].(map[string]any)
			if e.Fields["worker_id"] != "w1" || detail["strategy"] == nil || detail["reason"] == nil {
				t.Errorf("dispatch decision not recorded: %+v", e.Fields)
			}
			break
		}
	}
	other, _ := client.New(url, "other-token")
	if _, err := other.History(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client read the history: %v", err)
	}

	// The live store forgets the ended job; the API still answers from history.
	time.Sleep(600 * time.Millisecond)
	if _, err := o.Job(ctx, id); err == nil {
		t.Fatal("the live store kept the job past its retention")
	}
	got, err := c.Job(ctx, id)
	if err != nil || got.Status != protocol.StatusFinished || got.StateHistory["analysed_by"] == nil {
		t.Fatalf("job from history: %+v %v", got, err)
	}
	if _, err := other.Job(ctx, id); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client read an expired job: %v", err)
	}
	second, _ := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"hold": true})
	time.Sleep(50 * time.Millisecond)
	page, err := c.Jobs(ctx, client.ListOptions{Limit: 1})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != second || page.NextCursor == "" {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = c.Jobs(ctx, client.ListOptions{Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].ID != id {
		t.Fatalf("second page %+v %v", page, err)
	}
	page, _ = c.Jobs(ctx, client.ListOptions{Status: protocol.StatusFinished})
	if len(page.Jobs) != 1 || page.Jobs[0].ID != id {
		t.Fatalf("status filter: %+v", page)
	}
	if page, _ := other.Jobs(ctx, client.ListOptions{}); len(page.Jobs) != 0 {
		t.Fatalf("another client lists %d jobs", len(page.Jobs))
	}
}
