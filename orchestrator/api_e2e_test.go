package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/historydb"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TestShutdownFinishesInFlightRequests sends a request whose body is still
// arriving when shutdown begins: it completes with the engine still
// running, and what it did (a job created, its history) is kept.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hs, err := historydb.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(orchestrator.Config{Logger: quiet(), History: hs, ShutdownTimeout: 10 * time.Second,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &readSignalListener{Listener: inner, read: make(chan struct{})}
	addr := ln.Addr().String()
	sctx, shutdown := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- o.Serve(sctx, ln) }()

	body, bodyW := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/jobs/pipeline", body)
	req.Header.Set(protocol.HeaderClientToken, "acme-token")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, body: string(b)}
	}()
	if _, err := io.WriteString(bodyW, `{"initial_data": {"path": `); err != nil {
		t.Fatal(err)
	}
	// Shutdown must begin only once the handler is reading the body.
	select {
	case <-ln.read:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never read the request")
	}

	shutdown()
	testenv.WaitUntil(t, "the listener to close", 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := io.WriteString(bodyW, `"/in/a.mp4"}}`); err != nil {
		t.Fatal(err)
	}
	bodyW.Close()
	a := <-answered
	var created protocol.CreateJobResponse
	if a.err != nil || a.status != http.StatusAccepted || json.Unmarshal([]byte(a.body), &created) != nil || created.JobID == "" {
		t.Fatalf("the in-flight request: %d %s %v", a.status, a.body, a.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not end after the last request")
	}
	// The engine ran until the request was done: the job's creation reached
	// the history before the recorder was closed.
	events, err := hs.JobEvents(ctx, created.JobID)
	if err != nil || len(events) == 0 || events[0].Type != history.JobCreated {
		t.Fatalf("history of the job created during shutdown: %v %+v", err, events)
	}
	if j, err := o.Job(ctx, created.JobID); err != nil || j.Client.Name != "acme" {
		t.Fatalf("the job created during shutdown: %v %+v", err, j)
	}
}

// readSignalListener closes read when the server reads a connection for
// the second time: the first read brings the request's headers, and
// net/http drops a request whose headers arrive after Shutdown began; a
// second read comes from the handler reading the body, so the request is
// then in flight.
type readSignalListener struct {
	net.Listener
	read chan struct{}
	once sync.Once
}

func (l *readSignalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readSignalConn{Conn: c, l: l}, nil
}

type readSignalConn struct {
	net.Conn
	l     *readSignalListener
	reads atomic.Int32
}

func (c *readSignalConn) Read(p []byte) (int, error) {
	if c.reads.Add(1) == 2 {
		c.l.once.Do(func() { close(c.l.read) })
	}
	return c.Conn.Read(p)
}

// TestTokensAreNeverLogged runs client requests, worker registration, a
// task through short-lived tokens, auth failures and an admin reload with
// every log level captured, and looks for every secret in the output.
func TestTokensAreNeverLogged(t *testing.T) {
	t.Parallel()
	const (
		clientToken = "client-secret-7f3a9c"
		wrongClient = "wrong-client-secret-51d2"
		workerToken = "worker-secret-0b8e4d"
		globalToken = "global-secret-c6a117"
		wrongWorker = "wrong-worker-secret-93fe"
		adminToken  = "admin-secret-2d40b7"
	)
	dir := t.TempDir()
	clientsFile, workersFile := filepath.Join(dir, "clients.toml"), filepath.Join(dir, "workers.toml")
	writeTOML(t, clientsFile, "[acme]\ntoken = \""+clientToken+"\"\n")
	writeTOML(t, workersFile, "[w1]\ntoken = \""+workerToken+"\"\n")
	var logs testenv.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o, err := orchestrator.New(orchestrator.Config{Logger: logger, ClientsFile: clientsFile, WorkersFile: workersFile,
		GlobalWorkerToken: globalToken, AdminToken: adminToken, PollTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(pipeline()); err != nil {
		t.Fatal(err)
	}
	base := serveForTest(t, o)
	ctx := context.Background()
	secrets := []string{clientToken, wrongClient, workerToken, globalToken, wrongWorker, adminToken}

	// Client requests, and a refused one.
	c, err := client.New(base, clientToken)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateJob(ctx, "/jobs/pipeline", map[string]any{"path": "/in/x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Job(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Jobs(ctx, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	bad, _ := client.New(base, wrongClient)
	if _, err := bad.Job(ctx, id); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("wrong client token: %v", err)
	}

	// Registration, refused registrations, short-lived tokens.
	if code, body := signedRegister(t, base, "w1", workerToken, "prepare"); code != 200 {
		t.Fatalf("register: %d %s", code, body)
	}
	for _, tok := range []string{wrongWorker, globalToken} { // w1 has its own token
		if code, body := signedRegister(t, base, "w1", tok, "prepare"); code != http.StatusForbidden {
			t.Fatalf("register with %s: %d %s", tok, code, body)
		}
	}
	var issued, refreshed protocol.TokenResponse
	code, body := workerCall(t, "POST", base+protocol.PathToken, "w1", workerToken, nil)
	if code != 200 || json.Unmarshal([]byte(body), &issued) != nil || issued.AccessToken == "" {
		t.Fatalf("token: %d %s", code, body)
	}
	code, body = workerCall(t, "POST", base+protocol.PathTokenRefresh, "w1", "", map[string]string{"refresh_token": issued.RefreshToken})
	if code != 200 || json.Unmarshal([]byte(body), &refreshed) != nil || refreshed.AccessToken == "" {
		t.Fatalf("refresh: %d %s", code, body)
	}
	if code, body := workerCall(t, "POST", base+protocol.PathTokenRefresh, "w2", "", map[string]string{"refresh_token": refreshed.RefreshToken}); code != http.StatusForbidden {
		t.Fatalf("refresh by another worker: %d %s", code, body)
	}
	secrets = append(secrets, issued.AccessToken, issued.RefreshToken, refreshed.AccessToken, refreshed.RefreshToken)

	// The task, taken with the short-lived token; the result signed with the master token.
	var task protocol.TaskPayload
	testenv.WaitUntil(t, "the task", 10*time.Second, func() bool {
		code, body := workerCall(t, "GET", base+"/_worker/workers/w1/tasks/next?timeout=1", "w1", refreshed.AccessToken, nil)
		if code != 200 && code != http.StatusNoContent {
			t.Fatalf("poll: %d %s", code, body)
		}
		return code == 200 && json.Unmarshal([]byte(body), &task) == nil
	})
	if task.JobID != id {
		t.Fatalf("task %+v, want one of job %s", task, id)
	}
	res := map[string]any{"job_id": id, "task_id": task.TaskID, "worker_id": "w1", "status": "success",
		"data": map[string]any{"prepared": "yes"}, "timestamp": time.Now().Unix()}
	sig, err := protocol.Sign(res, workerToken)
	if err != nil {
		t.Fatal(err)
	}
	res["security"] = map[string]any{"signature": sig, "signer_id": "w1"}
	if code, body := workerCall(t, "POST", base+protocol.PathResult, "w1", refreshed.AccessToken, res); code != 200 {
		t.Fatalf("result: %d %s", code, body)
	}
	if code, body := workerCall(t, "GET", base+"/_worker/workers/w1/tasks/next?timeout=0.05", "w1", wrongWorker, nil); code != http.StatusForbidden {
		t.Fatalf("poll with a wrong token: %d %s", code, body)
	}
	waitForStatus(t, c, id, protocol.StatusWaitingForHuman)
	if err := c.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}

	// The WebSocket, opened with the short-lived token: refused frames are
	// logged.
	hdr := http.Header{protocol.HeaderWorkerToken: {refreshed.AccessToken}, protocol.HeaderWorkerID: {"w1"}}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/_worker/ws/w1", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	forged := map[string]any{"event_id": "e1", "worker_id": "w1", "origin_worker_id": "w1", "event_type": "progress",
		"payload": map[string]any{"progress": 0.5}, "timestamp": time.Now().Unix(), "target_job_id": id}
	sig, _ = protocol.SignEvent(forged, wrongWorker)
	forged["security"] = map[string]any{"signature": sig, "signer_id": "w1"}
	raw, _ := json.Marshal(forged)
	for _, frame := range [][]byte{[]byte("not json"), raw} {
		if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitUntil(t, "the refused frames in the log", 5*time.Second, func() bool {
		out := logs.String()
		return strings.Contains(out, "bad websocket frame") && strings.Contains(out, "websocket event rejected")
	})
	conn.Close(websocket.StatusNormalClosure, "")

	// Admin: a refused reload and a real one.
	if code, _ := call(t, "POST", base+"/api/v1/admin/reload", protocol.HeaderAdminToken, clientToken); code != http.StatusForbidden {
		t.Fatalf("reload with a client token: %d", code)
	}
	if code, body := call(t, "POST", base+"/api/v1/admin/reload", protocol.HeaderAdminToken, adminToken); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}

	out := logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a token (%.6s...) appears in the logs", s)
		}
	}
}

// parentAndChild: the parent runs the child blueprint, which waits for a
// human decision.
func parentAndChild() []*blueprint.Blueprint {
	child := blueprint.New("child_review")
	child.Start("start", func(c *blueprint.Context) error {
		return c.AwaitApproval("child decision")
	}, blueprint.On("approved", "finished"), blueprint.On("rejected", "rejected"))
	child.End("finished", nil)
	child.End("rejected", nil)
	parent := blueprint.New("parent").Endpoint("v1", "/jobs/parent")
	parent.Start("start", func(c *blueprint.Context) error {
		return c.RunBlueprint("child_review", map[string]any{"from": "parent"})
	}, blueprint.Child("child_review"), blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	parent.End("finished", nil)
	parent.End("failed", nil)
	return []*blueprint.Blueprint{parent, child}
}

// TestChildJobsBelongToTheParentsOwner: a sub-blueprint's job is the
// parent owner's, and another client cannot see or touch it.
func TestChildJobsBelongToTheParentsOwner(t *testing.T) {
	t.Parallel()
	o, err := orchestrator.New(orchestrator.Config{Logger: quiet(), Clients: []orchestrator.Client{
		{Name: "acme", Token: "acme-token"}, {Name: "globex", Token: "globex-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Register(parentAndChild()...); err != nil {
		t.Fatal(err)
	}
	base := serveForTest(t, o)
	ctx := context.Background()
	owner, _ := client.New(base, "acme-token")
	other, _ := client.New(base, "globex-token")

	parentID, err := owner.CreateJob(ctx, "/jobs/parent", nil)
	if err != nil {
		t.Fatal(err)
	}
	parent := waitForStatus(t, owner, parentID, protocol.StatusWaitingForSubJob)
	childID := parent.ChildJobID
	if childID == "" {
		t.Fatalf("parent without a child job: %+v", parent)
	}
	child := waitForStatus(t, owner, childID, protocol.StatusWaitingForHuman)
	if child.ParentJobID != parentID || child.Client != "acme" {
		t.Fatalf("the owner reads the child job: %+v", child)
	}

	if _, err := other.Job(ctx, childID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client reads the child job: %v", err)
	}
	if err := other.Cancel(ctx, childID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client cancels the child job: %v", err)
	}
	if err := other.Approve(ctx, childID, "approved"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("another client approves the child job: %v", err)
	}
	if page, err := other.Jobs(ctx, client.ListOptions{}); err != nil || len(page.Jobs) != 0 {
		t.Fatalf("another client's listing: %v %+v", err, page)
	}
	if j, err := owner.Job(ctx, childID); err != nil || j.Status != protocol.StatusWaitingForHuman {
		t.Fatalf("the child job after the other client's attempts: %v %+v", err, j)
	}

	// The owner decides; the parent resumes and finishes.
	if err := owner.Approve(ctx, childID, "approved"); err != nil {
		t.Fatal(err)
	}
	if j, err := owner.Wait(ctx, parentID, client.PollEvery(20*time.Millisecond)); err != nil || j.Status != protocol.StatusFinished {
		t.Fatalf("parent after the child: %v %+v", err, j)
	}
}

// waitForStatus polls a job over the client API until it has status.
func waitForStatus(t *testing.T, c *client.Client, id string, status protocol.JobStatus) *protocol.Job {
	t.Helper()
	var j *protocol.Job
	testenv.WaitUntil(t, "job "+id+" to be "+string(status), 10*time.Second, func() bool {
		var err error
		j, err = c.Job(context.Background(), id)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		return j.Status == status
	})
	return j
}
