package client_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Tokens the fake orchestrator knows.
const (
	tokenA = "secret-token-of-client-a"
	tokenB = "secret-token-of-client-b"
)

// recorded is one request the fake received.
type recorded struct {
	Method      string
	Path        string // unescaped
	EscapedPath string
	Query       url.Values
	Token       string
	HasToken    bool
	ContentType string
	Accept      string
	Body        []byte
}

// fake is an httptest orchestrator: it authenticates client routes like the
// real one (401 JSON errors), records every request, and dispatches to
// handlers a test registers with ServeMux patterns.
type fake struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu   sync.Mutex
	reqs []recorded
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	tok, has := r.Header[http.CanonicalHeaderKey(protocol.HeaderClientToken)]
	rec := recorded{
		Method:      r.Method,
		Path:        r.URL.Path,
		EscapedPath: r.URL.EscapedPath(),
		Query:       r.URL.Query(),
		HasToken:    has,
		ContentType: r.Header.Get("Content-Type"),
		Accept:      r.Header.Get("Accept"),
		Body:        body,
	}
	if has {
		rec.Token = tok[0]
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()

	if strings.HasPrefix(r.URL.Path, protocol.ClientPrefix+"/") {
		switch {
		case !has:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Missing X-Client-Token header"})
			return
		case rec.Token != tokenA && rec.Token != tokenB:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized: Invalid token"})
			return
		}
	}
	f.mux.ServeHTTP(w, r)
}

func (f *fake) handle(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

func (f *fake) client(opts ...client.Option) *client.Client {
	return f.clientWithToken(tokenA, opts...)
}

func (f *fake) clientWithToken(token string, opts ...client.Option) *client.Client {
	f.t.Helper()
	c, err := client.New(f.srv.URL, token, append([]client.Option{client.WithHTTPClient(f.srv.Client())}, opts...)...)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// only returns the single recorded request, failing otherwise.
func (f *fake) only() recorded {
	f.t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		f.t.Fatalf("got %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// expect checks method, path and the client token of a request.
func expect(t *testing.T, r recorded, method, path string) {
	t.Helper()
	if r.Method != method || r.EscapedPath != path {
		t.Errorf("request %s %s, want %s %s", r.Method, r.EscapedPath, method, path)
	}
	if r.Token != tokenA {
		t.Errorf("%s %s: X-Client-Token = %q, want the client's token", r.Method, r.EscapedPath, r.Token)
	}
}
