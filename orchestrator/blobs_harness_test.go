package orchestrator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv/s3env"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

// filesBlueprint: "upload" waits for the client to upload its input file
// and approve, then a worker digests it; "inline" dispatches large params
// to skill echo_big (or initial_data.skill) and hands its large result to
// check_big; "forward" hands initial_data.inputs (s3:// URIs) to skill
// peek, as the showcase's process_blobs does.
func filesBlueprint() *blueprint.Blueprint {
	bp := blueprint.New("files").Endpoint("v1", "/jobs/files")
	bp.Start("start", func(c *blueprint.Context) error {
		switch c.Input("mode") {
		case "inline":
			return c.GoTo("inline")
		case "forward":
			return c.GoTo("forward")
		}
		return c.AwaitApproval("upload the input file, then approve")
	}, blueprint.On("uploaded", "process"), blueprint.To("inline", "forward"))
	bp.State("forward", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "peek", Params: map[string]any{"inputs": c.Input("inputs")}})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	bp.State("process", func(c *blueprint.Context) error {
		name, _ := c.Input("file").(string)
		return c.Dispatch(blueprint.Task{Type: "digest", Params: map[string]any{"input": c.FileURI(name)}})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	bp.State("inline", func(c *blueprint.Context) error {
		skill, _ := c.Input("skill").(string)
		if skill == "" {
			skill = "echo_big"
		}
		return c.Dispatch(blueprint.Task{Type: skill, Params: map[string]any{"payload": c.Input("payload"), "tag": "small"}})
	}, blueprint.On("success", "second"), blueprint.On("failure", "failed"))
	bp.State("second", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{Type: "check_big", Params: map[string]any{"echo": c.Get("echo")}})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "failed"))
	bp.End("finished", nil)
	bp.End("failed", nil, blueprint.AsFailed())
	return bp
}

// blobSetup is an orchestrator with blob storage, serving over HTTP, and
// what the tests need around it.
type blobSetup struct {
	t       *testing.T
	o       *orchestrator.Orchestrator
	url     string
	store   blob.Store // the orchestrator's bucket, for inspection
	owner   *client.Client
	other   *client.Client
	workers sync.WaitGroup
	wctx    context.Context
	// workerBlobs configures a worker's blob storage like the
	// orchestrator's.
	workerBlobs func(*worker.Config)
}

// backend names a blob backend for a subtest: "local" always runs, "s3"
// needs AVTO_TEST_S3_ENDPOINT.
type backend string

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range []backend{"local", "s3"} {
		t.Run(string(b), func(t *testing.T) { fn(t, b) })
	}
}

// startBlobs starts an orchestrator on backend b (mutate adjusts its
// config) and returns the setup; start workers with addWorker.
func startBlobs(t *testing.T, b backend, mutate func(*orchestrator.Config)) *blobSetup {
	t.Helper()
	var opts blobs3.Options
	if b == "s3" {
		opts = s3env.Options(t)
	}
	return startBlobsOn(t, b, opts, mutate)
}

// startBlobsOn is startBlobs with the S3 options of backend "s3" given.
func startBlobsOn(t *testing.T, b backend, opts blobs3.Options, mutate func(*orchestrator.Config)) *blobSetup {
	t.Helper()
	cfg := orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "fleet-token", PollTimeout: 2 * time.Second, RetryBackoff: 50 * time.Millisecond,
		Clients: []orchestrator.Client{{Name: "acme", Token: "acme-token"}, {Name: "rival", Token: "rival-token"}},
	}
	s := &blobSetup{t: t}
	switch b {
	case "local":
		dir := t.TempDir()
		cfg.BlobDir = dir
		st, err := local.Open(local.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		s.store = st
		s.workerBlobs = func(c *worker.Config) { c.BlobDir = dir }
	case "s3":
		s.store = s3env.BucketFor(t, opts)
		cfg.S3 = opts
		s.workerBlobs = func(c *worker.Config) { c.S3 = opts }
	case "none":
		s.workerBlobs = func(*worker.Config) {}
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s.o, s.url = serveOrchestrator(t, cfg, filesBlueprint())
	wctx, stopWorkers := context.WithCancel(context.Background())
	s.wctx = wctx
	// Cleanups run last first: the workers stop before the server.
	t.Cleanup(func() {
		stopWorkers()
		s.workers.Wait()
	})
	var err error
	if s.owner, err = client.New(s.url, "acme-token"); err != nil {
		t.Fatal(err)
	}
	if s.other, err = client.New(s.url, "rival-token"); err != nil {
		t.Fatal(err)
	}
	return s
}

// addWorker runs an SDK worker with the setup's blob storage; mutate may
// adjust its config.
func (s *blobSetup) addWorker(id string, register func(w *worker.Worker), mutate func(*worker.Config)) {
	s.t.Helper()
	cfg := worker.Config{
		ID: id, Token: "fleet-token", Orchestrators: []worker.Orchestrator{{URL: s.url}}, Logger: quiet(),
		PollTimeout: time.Second, Resources: worker.Resources{DisableDetection: true, CPUCores: 2},
		TaskFilesDir: s.t.TempDir(), HeartbeatInterval: time.Second,
	}
	s.workerBlobs(&cfg)
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	register(w)
	s.workers.Go(func() {
		if err := w.Run(s.wctx); err != nil {
			s.t.Errorf("worker %s: %v", id, err)
		}
	})
	testenv.WaitUntil(s.t, "worker "+id+" registered", 15*time.Second, func() bool {
		ws, err := s.owner.Workers(context.Background())
		return err == nil && slices.ContainsFunc(ws, func(w protocol.WorkerInfo) bool { return w.WorkerID == id })
	})
}

// keys lists the objects under a job's prefix.
func (s *blobSetup) keys(jobID string) []string {
	s.t.Helper()
	infos, err := s.store.List(context.Background(), blob.JobPrefix(jobID))
	if err != nil {
		s.t.Fatalf("list: %v", err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, in.Key[len(blob.JobPrefix(jobID)):])
	}
	return out
}

// runUploadJob runs a files job to its end: created, "in.txt" uploaded
// while it waits for the owner, approved; it returns the job's ID and its
// final record.
func (s *blobSetup) runUploadJob(ctx context.Context) (string, *protocol.Job) {
	s.t.Helper()
	id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"file": "in.txt"})
	if err != nil {
		s.t.Fatal(err)
	}
	s.waitStatus(id, protocol.StatusWaitingForHuman)
	if _, err := s.owner.UploadFile(ctx, id, "in.txt", strings.NewReader("hello"), 5); err != nil {
		s.t.Fatal(err)
	}
	if err := s.owner.Approve(ctx, id, "uploaded"); err != nil {
		s.t.Fatal(err)
	}
	return id, s.waitStatus(id, protocol.StatusFinished)
}

// waitStatus waits until a job has the given status.
func (s *blobSetup) waitStatus(id string, status protocol.JobStatus) *protocol.Job {
	s.t.Helper()
	var j *protocol.Job
	testenv.WaitUntil(s.t, fmt.Sprintf("job %s to be %s", id, status), 60*time.Second, func() bool {
		var err error
		j, err = s.owner.Job(context.Background(), id)
		return err == nil && j.Status == status
	})
	return j
}

// digestSkill hashes its input file and returns a result file holding the
// input reversed.
func digestSkill(w *worker.Worker) {
	w.Handle("digest", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
		var p struct {
			Input string `json:"input"`
		}
		if err := t.Decode(&p); err != nil {
			return worker.Result{}, err
		}
		data, err := os.ReadFile(p.Input)
		if err != nil {
			return worker.Result{}, worker.InvalidInput(err)
		}
		sum := sha256.Sum256(data)
		slices.Reverse(data)
		out, err := t.Path("result.bin")
		if err != nil {
			return worker.Result{}, err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return worker.Result{}, err
		}
		return worker.Result{Data: map[string]any{"output": out, "input_sha256": hex.EncodeToString(sum[:]), "bytes": len(data)}}, nil
	})
}

// peekSkill hashes the input files it receives (initial_data.inputs,
// downloaded by the SDK) and reports every task on seen.
func peekSkill(seen chan<- string) func(w *worker.Worker) {
	return func(w *worker.Worker) {
		w.Handle("peek", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
			seen <- t.JobID()
			var p struct {
				Inputs []string `json:"inputs"`
			}
			if err := t.Decode(&p); err != nil {
				return worker.Result{}, err
			}
			var sums []any
			for _, path := range p.Inputs {
				data, err := os.ReadFile(path)
				if err != nil {
					return worker.Result{}, worker.InvalidInput(err)
				}
				sums = append(sums, sha256Hex(data))
			}
			return worker.Result{Data: map[string]any{"sha256": sums}}, nil
		})
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readAllClose(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// download fetches a job file as its owner.
func (s *blobSetup) download(id, name string) []byte {
	s.t.Helper()
	rc, err := s.owner.DownloadFile(context.Background(), id, name)
	return readAllClose(s.t, rc, err)
}
