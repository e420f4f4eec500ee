package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// serveForTest serves o on a loopback port until the test ends and returns
// its base URL.
func serveForTest(t *testing.T, o *orchestrator.Orchestrator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- o.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := o.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func writeTOML(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

var registrations atomic.Int64

// signedRegister registers a worker the way an SDK does (a signed message
// with a fresh timestamp) and returns the status and body of the answer.
func signedRegister(t *testing.T, base, id, token string, skills ...string) (int, string) {
	t.Helper()
	var supported []map[string]any
	for _, s := range skills {
		supported = append(supported, map[string]any{"name": s})
	}
	reg := map[string]any{"worker_id": id, "worker_type": "test", "timestamp": time.Now().Unix(),
		// A nonce, so that two registrations in one second differ.
		"metadata": map[string]any{"nonce": registrations.Add(1)}}
	if supported != nil {
		reg["supported_skills"] = supported
	}
	sig, err := protocol.Sign(reg, token)
	if err != nil {
		t.Fatal(err)
	}
	reg["security"] = map[string]any{"signature": sig, "signer_id": id}
	return workerCall(t, "POST", base+protocol.PathRegister, id, token, reg)
}

// workerCall sends a worker request; body is nil or a value to encode.
func workerCall(t *testing.T, method, url, id, token string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	return send(t, method, url, rd, protocol.HeaderWorkerToken, token, protocol.HeaderWorkerID, id)
}

// call sends a request with one header (name "" for none) and returns the
// status and body.
func call(t *testing.T, method, url, header, value string) (int, string) {
	t.Helper()
	if header == "" {
		return send(t, method, url, nil)
	}
	return send(t, method, url, nil, header, value)
}

// send sends a request with the headers given as name, value pairs and
// returns the status and body.
func send(t *testing.T, method, url string, body io.Reader, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestAdminReloadOfConfigFiles runs the production reload path: the
// orchestrator re-reads clients.toml and workers.toml on POST
// /api/v1/admin/reload, and old tokens stop working at once.
func TestAdminReloadOfConfigFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clientsFile, workersFile := filepath.Join(dir, "clients.toml"), filepath.Join(dir, "workers.toml")
	writeTOML(t, clientsFile, "[acme]\ntoken = \"client-token-old\"\nplan = \"basic\"\n")
	writeTOML(t, workersFile, "[gpu-1]\ntoken = \"worker-token-old\"\n")
	o, err := orchestrator.New(orchestrator.Config{Logger: quiet(), ClientsFile: clientsFile, WorkersFile: workersFile, AdminToken: "admin-token"})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	base := serveForTest(t, o)
	jobs := base + "/api/v1/jobs"
	reload := func(token string) (int, string) {
		return call(t, "POST", base+"/api/v1/admin/reload", protocol.HeaderAdminToken, token)
	}

	if code, body := signedRegister(t, base, "gpu-1", "worker-token-old"); code != 200 {
		t.Fatalf("register with the first token: %d %s", code, body)
	}
	if code, body := call(t, "GET", jobs, protocol.HeaderClientToken, "client-token-old"); code != 200 {
		t.Fatalf("client with the first token: %d %s", code, body)
	}

	writeTOML(t, clientsFile, "[acme]\ntoken = \"client-token-new\"\nplan = \"basic\"\n")
	writeTOML(t, workersFile, "[gpu-1]\ntoken = \"worker-token-new\"\n")
	// The files alone change nothing, nor does a reload without the admin token.
	for _, token := range []string{"", "not-the-admin-token", "client-token-old"} {
		if code, body := reload(token); code != http.StatusForbidden {
			t.Fatalf("reload with %q: %d %s", token, code, body)
		}
	}
	if code, body := signedRegister(t, base, "gpu-1", "worker-token-old"); code != 200 {
		t.Fatalf("the old worker token before the reload: %d %s", code, body)
	}

	code, body := reload("admin-token")
	if code != 200 || !strings.Contains(body, `"status":"reloaded"`) || !strings.Contains(body, `"clients":1`) || !strings.Contains(body, `"workers":1`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, body := signedRegister(t, base, "gpu-1", "worker-token-new"); code != 200 {
		t.Fatalf("register with the new worker token: %d %s", code, body)
	}
	if code, body := signedRegister(t, base, "gpu-1", "worker-token-old"); code != http.StatusForbidden {
		t.Fatalf("register with the old worker token: %d %s", code, body)
	}
	if code, body := workerCall(t, "GET", base+"/_worker/workers/gpu-1/tasks/next?timeout=0.05", "gpu-1", "worker-token-old", nil); code != http.StatusForbidden {
		t.Fatalf("poll with the old worker token: %d %s", code, body)
	}
	if code, body := call(t, "GET", jobs, protocol.HeaderClientToken, "client-token-new"); code != 200 {
		t.Fatalf("client with the new token: %d %s", code, body)
	}
	// A client API auth failure is 401 (a worker's is 403, as upstream).
	if code, body := call(t, "GET", jobs, protocol.HeaderClientToken, "client-token-old"); code != http.StatusUnauthorized {
		t.Fatalf("client with the old token: %d %s", code, body)
	}

	// A broken file is refused and the running configuration stays.
	writeTOML(t, workersFile, "[gpu-1]\ntoken = 5\n")
	if code, body := reload("admin-token"); code != http.StatusBadRequest || !strings.Contains(body, "token must be a non-empty string") {
		t.Fatalf("reload of a broken file: %d %s", code, body)
	}
	if code, body := signedRegister(t, base, "gpu-1", "worker-token-new"); code != 200 {
		t.Fatalf("the new worker token after a failed reload: %d %s", code, body)
	}
	if code, body := call(t, "GET", jobs, protocol.HeaderClientToken, "client-token-new"); code != 200 {
		t.Fatalf("the new client token after a failed reload: %d %s", code, body)
	}
}
