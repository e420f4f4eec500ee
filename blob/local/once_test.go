package local_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
)

func put(t *testing.T, u string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func read(t *testing.T, s *local.Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// TestUploadURLIsSingleUse: a presigned PUT URL used to work any number of
// times until it expired, so whoever saw it could replace the file. Now
// the first PUT spends it; GET URLs still work until they expire.
func TestUploadURLIsSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := serve(t, local.Options{})
	u, err := s.PresignPut(ctx, "jobs/j/in.txt", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := put(t, u, "first"); code != http.StatusOK {
		t.Fatalf("first PUT: %d %s", code, body)
	}
	code, body := put(t, u, "replaced")
	if code != http.StatusForbidden || !strings.Contains(body, "already been used") {
		t.Fatalf("second PUT: %d %s", code, body)
	}
	if got := read(t, s, "jobs/j/in.txt"); got != "first" {
		t.Fatalf("object after a refused PUT: %q", got)
	}
	// A new URL for the same key works (once).
	u2, _ := s.PresignPut(ctx, "jobs/j/in.txt", time.Hour)
	if code, body := put(t, u2, "second"); code != http.StatusOK || read(t, s, "jobs/j/in.txt") != "second" {
		t.Fatalf("a new URL: %d %s", code, body)
	}
	g, _ := s.PresignGet(ctx, "jobs/j/in.txt", time.Hour)
	for range 3 {
		resp, err := http.Get(g)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET URL: %d", resp.StatusCode)
		}
	}
}

// TestUploadURLConcurrentUse: of PUTs racing on one URL, exactly one wins.
func TestUploadURLConcurrentUse(t *testing.T) {
	t.Parallel()
	s := serve(t, local.Options{})
	u, _ := s.PresignPut(context.Background(), "race.bin", time.Hour)
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(make([]byte, 10_000)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusForbidden:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 15 {
		t.Fatalf("%d PUTs succeeded and %d were refused, want 1 and 15", ok.Load(), refused.Load())
	}
}

// TestOversizedUploadDoesNotSpendURL: a PUT refused for its announced size
// sent nothing, so the URL stays good.
func TestOversizedUploadDoesNotSpendURL(t *testing.T) {
	t.Parallel()
	s := serve(t, local.Options{MaxUploadBytes: 10})
	u, _ := s.PresignPut(context.Background(), "small.txt", time.Hour)
	if code, body := put(t, u, strings.Repeat("x", 11)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized PUT: %d %s", code, body)
	}
	if code, body := put(t, u, "fits"); code != http.StatusOK {
		t.Fatalf("PUT after an oversized one: %d %s", code, body)
	}
}

// TestUploadURLSpentAcrossProcesses: orchestrators that share a folder and
// signing key, and record spent URLs in their shared store (SpendWith),
// refuse at one a URL already used at the other.
func TestUploadURLSpentAcrossProcesses(t *testing.T) {
	t.Parallel()
	dir, key := t.TempDir(), []byte("shared-signing-key")
	shared := memory.New(memory.Options{})
	var urls []string
	for range 2 {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		s, err := local.Open(local.Options{Dir: dir, SigningKey: key, BaseURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		s.SpendWith(shared.SetOnce)
		mux.Handle(local.DefaultRoute+"/", s.Handler())
		urls = append(urls, srv.URL)
	}
	a, _ := local.Open(local.Options{Dir: dir, SigningKey: key, BaseURL: urls[0]})
	u, _ := a.PresignPut(context.Background(), "shared.txt", time.Hour)
	if code, body := put(t, u, "at A"); code != http.StatusOK {
		t.Fatalf("PUT at A: %d %s", code, body)
	}
	if code, body := put(t, strings.Replace(u, urls[0], urls[1], 1), "at B"); code != http.StatusForbidden {
		t.Fatalf("the same URL at B: %d %s", code, body)
	}
}

// TestUploadURLStoreDown: when the use of a URL cannot be recorded, the
// upload is refused (503) rather than let through unrecorded.
func TestUploadURLStoreDown(t *testing.T) {
	t.Parallel()
	s := serve(t, local.Options{})
	s.SpendWith(func(context.Context, string, time.Duration) (bool, error) { return false, context.DeadlineExceeded })
	u, _ := s.PresignPut(context.Background(), "x.txt", time.Hour)
	if code, body := put(t, u, "x"); code != http.StatusServiceUnavailable {
		t.Fatalf("PUT while the store is down: %d %s", code, body)
	}
}
