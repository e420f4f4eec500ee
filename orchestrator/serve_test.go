package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestGracefulShutdownReleasesLongPolls(t *testing.T) {
	t.Parallel()
	o, err := orchestrator.New(orchestrator.Config{Logger: quiet(), GlobalWorkerToken: "tok", PollTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- o.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	// Register a worker (signed) and start a 30 s long poll.
	reg := map[string]any{"worker_id": "w1", "timestamp": time.Now().Unix()}
	sig, _ := protocol.Sign(reg, "tok")
	reg["security"] = map[string]any{"signature": sig}
	body, _ := json.Marshal(reg)
	req, _ := http.NewRequest("POST", base+protocol.PathRegister, bytes.NewReader(body))
	req.Header.Set(protocol.HeaderWorkerToken, "tok")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("register: %v %v", err, resp)
	}
	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/_worker/workers/w1/tasks/next?timeout=30", nil)
		req.Header.Set(protocol.HeaderWorkerToken, "tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case code := <-polled:
		if code != http.StatusNoContent {
			t.Fatalf("the long poll ended with %d, want 204", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll was not released on shutdown")
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}
