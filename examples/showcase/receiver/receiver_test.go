package receiver

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestReceiverVerifiesAndRecords(t *testing.T) {
	t.Parallel()
	r := New("shh", slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	body, _ := json.Marshal(protocol.WebhookPayload{Event: "job_finished", JobID: "j1", Status: "finished"})
	send := func(sig string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/webhook", bytes.NewReader(body))
		req.Header.Set(protocol.HeaderWebhookSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("t=1,v1=00"); code != 401 {
		t.Fatalf("bad signature: %d", code)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		send(protocol.SignWebhook("shh", time.Now(), body))
	}()
	n, ok := r.Wait("j1", 5*time.Second)
	if !ok || !n.Verified || n.Payload.Event != "job_finished" {
		t.Fatalf("notification %+v %v", n, ok)
	}
	if len(r.Received()) != 1 {
		t.Fatalf("received %d", len(r.Received()))
	}
}
