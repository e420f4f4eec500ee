package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestDeliverSignsAndClassifies(t *testing.T) {
	t.Parallel()
	var got protocol.WebhookPayload
	var sigErr error
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sigErr = protocol.VerifyWebhook("secret", r.Header.Get(protocol.HeaderWebhookSignature), body, time.Now(), time.Minute)
		_ = json.Unmarshal(body, &got)
		w.WriteHeader(code)
	}))
	defer srv.Close()
	s := New(Options{Secret: "secret", Timeout: time.Second, AllowedHosts: []string{"127.0.0.1/32"}})
	msg := "boom"
	p := protocol.WebhookPayload{Event: "job_failed", JobID: "j1", Status: "failed", Error: &msg, Attempt: 2}
	for _, tc := range []struct {
		code  int
		retry bool
		fails bool
	}{{200, false, false}, {204, false, false}, {500, true, true}, {503, true, true}, {429, true, true}, {408, true, true}, {404, false, true}, {400, false, true}} {
		code = tc.code
		status, retry, err := s.Deliver(context.Background(), srv.URL, p)
		if status != tc.code || retry != tc.retry || (err != nil) != tc.fails {
			t.Errorf("%d: status %d retry %v err %v", tc.code, status, retry, err)
		}
		if sigErr != nil {
			t.Fatalf("receiver could not verify the signature: %v", sigErr)
		}
		if got.JobID != "j1" || got.Event != "job_failed" || *got.Error != "boom" || got.Attempt != 2 {
			t.Fatalf("payload %+v", got)
		}
	}
	srv.Close()
	if _, retry, err := s.Deliver(context.Background(), srv.URL, p); err == nil || !retry {
		t.Fatalf("receiver down: retry %v err %v", retry, err)
	}
}
