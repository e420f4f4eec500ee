package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv/s3env"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// process is a showcase part running as its own OS process.
type process struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on SIGTERM", p.name)
	}
}

type deployment struct {
	t       *testing.T
	bin     string
	dir     string // working directory of the processes ("": the test's)
	env     []string
	procs   []*process
	api     string
	webhook string
}

func (d *deployment) start(name string, extraEnv []string, args ...string) *process {
	d.t.Helper()
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(d.bin, args...)
	p.cmd.Dir = d.dir
	p.cmd.Env = append(append(os.Environ(), d.env...), extraEnv...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	d.procs = append(d.procs, p)
	d.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.stop(d.t)
		}
		if d.t.Failed() {
			d.t.Logf("--- output of %s ---\n%s", p.name, p.output())
		}
	})
	return p
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// showcaseBinary builds the showcase once per test run.
func showcaseBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the showcase processes")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "showcase-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "showcase")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestShowcaseAsSeparateProcesses builds the showcase and runs the
// orchestrator, the three workers and the webhook receiver as separate
// processes on loopback ports, then checks the seed's story end to end.
func TestShowcaseAsSeparateProcesses(t *testing.T) {
	t.Parallel()
	bin := showcaseBinary(t)
	dir := t.TempDir()
	schedules := filepath.Join(dir, "schedules.toml")
	if err := os.WriteFile(schedules, []byte("[maintenance_task]\nblueprint = \"periodic_maintenance\"\ninterval_seconds = 2\n"+
		"initial_data = { source = \"scheduler\", task_type = \"cleanup\" }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiPort, hookPort := testenv.FreePort(t), testenv.FreePort(t)
	d := &deployment{t: t, bin: bin,
		api: fmt.Sprintf("http://127.0.0.1:%d", apiPort), webhook: fmt.Sprintf("http://127.0.0.1:%d/webhook", hookPort)}
	d.env = []string{
		fmt.Sprintf("API_PORT=%d", apiPort), fmt.Sprintf("WEBHOOK_PORT=%d", hookPort),
		"ORCHESTRATOR_URL=" + d.api, "WEBHOOK_URL=" + d.webhook, "SHOWCASE_TIME_SCALE=0.05",
		"SCHEDULES_CONFIG_PATH=" + schedules, "ADMIN_TOKEN=admin-test-token", "LOG_LEVEL=INFO",
		"DETERMINISTIC_BLUEPRINT=true", "RETRY_BACKOFF_SECONDS=0.05", "HEARTBEAT_INTERVAL=1",
		"HISTORY_DATABASE_URI=" + historyURI(t, dir),
	}
	d.env = append(d.env, blobEnv(t, dir)...)
	receiver := d.start("webhook-receiver", nil, "webhook-receiver")
	d.start("orchestrator", nil, "orchestrator")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vip, err := client.New(d.api, "user_token_vip")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the orchestrator", 60*time.Second, func() bool { return vip.Ping(ctx) == nil })

	// The seed client's job, created before any worker runs, waits and says
	// why; once the workers come it finishes with three analyses and a
	// signed webhook.
	id, err := vip.CreateJob(ctx, "/jobs/full_showcase",
		map[string]any{"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": true}, client.WithWebhook(d.webhook))
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the job to wait for a worker", 20*time.Second, func() bool {
		j, err := vip.Job(ctx, id)
		return err == nil && j.Status == protocol.StatusWaitingForWorker &&
			strings.HasPrefix(j.ProgressMessage, "waiting: no worker with skill analyze_file")
	})
	deterministic := []string{"DETERMINISTIC_WORKER=true", "WORKER_PORT=0"}
	var workerProcs []*process
	for _, kind := range []string{"gpu", "cpu-reliable", "cpu-unreliable"} {
		workerProcs = append(workerProcs, d.start("worker "+kind, deterministic, "worker", kind))
	}
	job, err := vip.Wait(ctx, id, client.PollEvery(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	summary, _ := job.StateHistory["analysis_summary"].(map[string]any)
	if job.Status != protocol.StatusFinished || len(summary) != 3 {
		t.Fatalf("job %s: status %s, analysis_summary %v, error %q", id, job.Status, job.StateHistory["analysis_summary"], job.ErrorMessage)
	}
	testenv.WaitUntil(t, "the signed webhook", 20*time.Second, func() bool {
		return strings.Contains(receiver.output(), "job_id="+id) && strings.Contains(receiver.output(), "signature_ok=true")
	})
	t.Run("history", func(t *testing.T) { checkHistory(t, ctx, vip, id) })
	t.Run("process_blobs", func(t *testing.T) { checkProcessBlobs(t, ctx, vip, id) })

	// The limited client is refused after its two attempts.
	limited, _ := client.New(d.api, "limited-access-token")
	for i := range 2 {
		if _, err := limited.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"quality": "low"}); err != nil {
			t.Fatalf("limited client attempt %d: %v", i+1, err)
		}
	}
	if _, err := limited.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"quality": "low"}); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("third attempt of the limited client: %v", err)
	}

	// The scheduler's maintenance job ran.
	testenv.WaitUntil(t, "a finished maintenance job", 30*time.Second, func() bool {
		var scheds []protocol.ScheduleInfo
		if getAdmin(t, d.api, "/api/v1/admin/schedules", &scheds) != nil || len(scheds) != 1 || scheds[0].LastRun == nil {
			return false
		}
		var j protocol.Job
		return getAdmin(t, d.api, "/api/v1/admin/jobs/"+scheds[0].LastRun.JobID, &j) == nil &&
			j.Blueprint == "periodic_maintenance" && j.Status == protocol.StatusFinished
	})

	// Reputation: the workers restart with their random behaviour; over 30
	// best_value jobs the unreliable worker loses standing and best_value
	// turns to the reliable one.
	for _, p := range workerProcs {
		p.stop(t)
	}
	for _, kind := range []string{"gpu", "cpu-reliable", "cpu-unreliable"} {
		d.start("worker "+kind+" (random)", []string{"DETERMINISTIC_WORKER=false", "WORKER_PORT=0"}, "worker", kind)
	}
	testenv.WaitUntil(t, "three workers again", 60*time.Second, func() bool {
		ws, err := vip.Workers(ctx)
		if err != nil {
			return false
		}
		idle := 0
		for _, w := range ws {
			if w.Status == protocol.WorkerIdle {
				idle++
			}
		}
		return idle == 3
	})
	var last *protocol.Job
	for i := range 30 {
		id, err := vip.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"use_reputation": true})
		if err != nil {
			t.Fatalf("reputation job %d: %v", i, err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		last, err = vip.Wait(wctx, id, client.PollEvery(50*time.Millisecond))
		wcancel()
		if err != nil {
			j, _ := vip.Job(ctx, id)
			ws, _ := vip.Workers(ctx)
			raw, _ := json.MarshalIndent(map[string]any{"job": j, "workers": ws}, "", "  ")
			t.Fatalf("reputation job %d: %v\n%s", i, err, raw)
		}
	}
	ws, err := vip.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := map[string]float64{}
	for _, w := range ws {
		rep[w.WorkerID] = w.Reputation
	}
	if rep["cpu-worker-01"] >= rep["cpu-worker-02"] {
		t.Fatalf("reputations after 30 jobs: %v; the unreliable worker should have fallen below the reliable one", rep)
	}
	first := last.Dispatches[0]
	if first.Type != "analyze_file" || first.Strategy != "best_value" || first.WorkerID != "cpu-worker-02" || first.Attempt != 1 {
		t.Fatalf("best_value's first choice in the last job: %+v (reputations %v)", first, rep)
	}
	t.Logf("reputations after 30 best_value jobs: %v", rep)

	checkDashboardMetrics(t, d.api)
	t.Run("Prometheus scrapes the orchestrator", func(t *testing.T) { scrapeWithPrometheus(t, apiPort) })
}

func getAdmin(t *testing.T, base, path string, v any) error {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set(protocol.HeaderAdminToken, "admin-test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return jsonDecode(resp.Body, v)
}

// TestKilledWorkerProcessLosesItsTask kills a worker process with SIGKILL
// in the middle of a task: once its heartbeats stop for WORKER_TTL_SECONDS,
// the task moves to another worker and the job finishes.
func TestKilledWorkerProcessLosesItsTask(t *testing.T) {
	t.Parallel()
	bin := showcaseBinary(t)
	apiPort := testenv.FreePort(t)
	d := &deployment{t: t, bin: bin, api: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	d.env = []string{fmt.Sprintf("API_PORT=%d", apiPort), fmt.Sprintf("WEBHOOK_PORT=%d", testenv.FreePort(t)), "ORCHESTRATOR_URL=" + d.api,
		"WORKER_TTL_SECONDS=2", "DETERMINISTIC_WORKER=true", "DETERMINISTIC_BLUEPRINT=true", "LOG_LEVEL=INFO",
		"WORKER_PORT=0", "HEARTBEAT_INTERVAL=0.5", "WORKER_TOKEN=super-secret-worker-token", "RETRY_BACKOFF_SECONDS=0.05",
		"HISTORY_DATABASE_URI=none", "BLOB_DIR=none"}
	d.start("orchestrator", nil, "orchestrator")
	// The first GPU worker is slow: its transcoding would take minutes.
	doomed := d.start("worker gpu-a", []string{"WORKER_ID=gpu-a", "SHOWCASE_TIME_SCALE=100"}, "worker", "gpu")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := client.New(d.api, "user_token_vip")
	testenv.WaitUntil(t, "gpu-a", 30*time.Second, func() bool { ws, err := c.Workers(ctx); return err == nil && len(ws) == 1 })
	id, err := c.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"quality": "low"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "transcoding on gpu-a", 30*time.Second, func() bool {
		j, err := c.Job(ctx, id)
		return err == nil && len(j.Tasks) == 1 && j.Tasks[0].State == "running" && j.Tasks[0].WorkerID == "gpu-a"
	})
	d.start("worker gpu-b", []string{"WORKER_ID=gpu-b", "SHOWCASE_TIME_SCALE=0.05"}, "worker", "gpu")
	if err := doomed.cmd.Process.Kill(); err != nil { // SIGKILL: no goodbye
		t.Fatal(err)
	}
	<-doomed.done
	job, err := c.Wait(ctx, id, client.PollEvery(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != protocol.StatusFinished {
		t.Fatalf("job %s: %s (%s)", id, job.Status, job.ErrorMessage)
	}
	var moved bool
	for _, dsp := range job.Dispatches {
		if dsp.Type == "transcode_video" && dsp.Attempt == 2 && dsp.WorkerID == "gpu-b" {
			moved = true
		}
	}
	if !moved {
		t.Fatalf("the transcoding did not move to gpu-b: %+v", job.Dispatches)
	}
}

// historyURI is the showcase's history database: the PostgreSQL of the
// test environment when there is one (in a schema of its own), else SQLite.
func historyURI(t *testing.T, dir string) string {
	if url, ok := testenv.Find(testenv.PostgresVar); ok {
		return testenv.PostgresSchemaURL(t, url, "avto_showcase")
	}
	t.Logf("history: SQLite (no PostgreSQL: set %s)", testenv.PostgresVar)
	return "sqlite:" + filepath.Join(dir, "history.db")
}

// checkHistory reads the finished seed job's audit trail back from the
// history database.
func checkHistory(t *testing.T, ctx context.Context, vip *client.Client, id string) {
	var events []client.HistoryEvent
	testenv.WaitUntil(t, "the job's history", 20*time.Second, func() bool {
		var err error
		events, err = vip.History(ctx, id)
		return err == nil && slices.ContainsFunc(events, func(ev client.HistoryEvent) bool { return ev.EventType == "job_ended" })
	})
	seen := map[string]bool{}
	for _, ev := range events {
		seen[ev.EventType] = true
	}
	for _, want := range []string{"job_created", "state_entered", "task_dispatched", "task_result"} {
		if !seen[want] {
			t.Errorf("history of %s has no %s event; it has %v", id, want, seen)
		}
	}
}

// blobEnv is the showcase's blob storage in tests: MinIO (a bucket of the
// test's own) when the test environment has it, else a local folder.
func blobEnv(t *testing.T, dir string) []string {
	if _, ok := testenv.Find(testenv.S3Var); !ok {
		t.Logf("blob storage: a local folder (no MinIO: set %s)", testenv.S3Var)
		return []string{"BLOB_DIR=" + filepath.Join(dir, "blobs"), "TASK_FILES_DIR=" + filepath.Join(dir, "tasks")}
	}
	opts := s3env.Options(t)
	s3env.BucketFor(t, opts)
	return []string{"S3_ENDPOINT_URL=" + opts.Endpoint, "S3_ACCESS_KEY=" + opts.AccessKey, "S3_SECRET_KEY=" + opts.SecretKey,
		"S3_DEFAULT_BUCKET=" + opts.Bucket, "BLOB_DIR=none", "TASK_FILES_DIR=" + filepath.Join(dir, "tasks")}
}

// checkProcessBlobs runs full_showcase's process_blobs path: a file the
// client uploaded (to an earlier job of its own) goes in as an s3:// input,
// the GPU worker writes a report that the SDK uploads, and the client
// downloads it.
func checkProcessBlobs(t *testing.T, ctx context.Context, vip *client.Client, earlier string) {
	clip := []byte(strings.Repeat("frame ", 50_000))
	up, err := vip.UploadFile(ctx, earlier, "clip.bin", strings.NewReader(string(clip)), int64(len(clip)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := vip.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"quality": "low", "blob_report": true, "inputs": []string{up.S3URI}})
	if err != nil {
		t.Fatal(err)
	}
	job, err := vip.Wait(ctx, id, client.PollEvery(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	name := "report-" + id + ".txt"
	ref, _ := job.StateHistory["report_path"].(string)
	if job.Status != protocol.StatusFinished || !strings.HasPrefix(ref, "s3://") || !strings.HasSuffix(ref, "/jobs/"+id+"/"+name) {
		t.Fatalf("job %s: %s %q, report_path %q", id, job.Status, job.ErrorMessage, ref)
	}
	rc, err := vip.DownloadFile(ctx, id, name)
	if err != nil {
		t.Fatal(err)
	}
	report, err := io.ReadAll(rc)
	rc.Close()
	sum := sha256.Sum256(clip)
	if err != nil || !strings.Contains(string(report), "report for job "+id) ||
		!strings.Contains(string(report), fmt.Sprintf("input clip.bin: %d bytes, sha256 %s", len(clip), hex.EncodeToString(sum[:]))) {
		t.Fatalf("report: %q %v", report, err)
	}
	t.Logf("process_blobs: %s", ref)
}
