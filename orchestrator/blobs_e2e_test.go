package orchestrator_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv/s3env"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/worker"
)

func randomPayload(n int) []byte {
	r := rand.New(rand.NewPCG(7, 11))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// TestBlobRoundTrip20MB: a client uploads 20 MB through a presigned URL with
// a plain net/http client, the job hands the object to an SDK worker, which
// downloads it, digests it and returns a result file that the SDK uploads;
// the client downloads the result through the redirect. Bytes are checked
// by hash at both ends.
func TestBlobRoundTrip20MB(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startBlobs(t, b, nil)
		s.addWorker("digester", digestSkill, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		input := randomPayload(20 << 20)
		started := time.Now()

		id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"file": "input.bin"})
		if err != nil {
			t.Fatal(err)
		}
		s.waitStatus(id, protocol.StatusWaitingForHuman)
		up, err := s.owner.UploadURL(ctx, id, "input.bin", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if up.Method != http.MethodPut || up.ExpiresIn != 600 || up.S3URI != blob.NewURI(s.store.Bucket(), "jobs/"+id+"/input.bin") {
			t.Fatalf("upload URL %+v", up)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, up.URL, bytes.NewReader(input))
		resp, err := http.DefaultClient.Do(req) // a plain client: no token
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("presigned PUT: %d", resp.StatusCode)
		}
		uploaded := time.Now()
		if err := s.owner.Approve(ctx, id, "uploaded"); err != nil {
			t.Fatal(err)
		}
		job, err := s.owner.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		finished := time.Now()
		want := "s3://" + s.store.Bucket() + "/jobs/" + id + "/result.bin"
		if job.Status != protocol.StatusFinished || job.StateHistory["output"] != want || job.StateHistory["input_sha256"] != sha256Hex(input) {
			t.Fatalf("job %s: %s %q, state_history %v", id, job.Status, job.ErrorMessage, job.StateHistory)
		}
		got := s.download(id, "result.bin")
		done := time.Now()
		slices.Reverse(input)
		if len(got) != len(input) || sha256Hex(got) != sha256Hex(input) {
			t.Fatalf("downloaded %d bytes, hash differs", len(got))
		}
		if keys := s.keys(id); !slices.Equal(keys, []string{"input.bin", "result.bin"}) {
			t.Fatalf("objects of the job: %v", keys)
		}
		t.Logf("%s: 20 MiB round trip %s (upload %s, job %s, download %s)", b, done.Sub(started).Round(time.Millisecond),
			uploaded.Sub(started).Round(time.Millisecond), finished.Sub(uploaded).Round(time.Millisecond), done.Sub(finished).Round(time.Millisecond))
	})
}

// noRedirect is a plain client that does not follow redirects.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func rawDo(t *testing.T, method, u, token string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(protocol.HeaderClientToken, token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestBlobFileRoutes: streaming uploads, redirects to presigned GETs that
// work with a plain client, owner-only access, size limits and file name
// checks, on both backends.
func TestBlobFileRoutes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startBlobs(t, b, func(c *orchestrator.Config) { c.MaxUploadBytes = 2 << 20 })
		ctx := context.Background()
		id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"file": "x"})
		if err != nil {
			t.Fatal(err)
		}
		// Streaming upload, of known and unknown length.
		data := randomPayload(1 << 20)
		up, err := s.owner.UploadFile(ctx, id, "data.bin", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if up.Status != "uploaded" || up.S3URI != blob.NewURI(s.store.Bucket(), "jobs/"+id+"/data.bin") || up.Size != int64(len(data)) || up.ETag == "" {
			t.Fatalf("upload answer %+v", up)
		}
		if _, err := s.owner.UploadFile(ctx, id, "stream.txt", io.MultiReader(strings.NewReader("part one, "), strings.NewReader("part two")), -1); err != nil {
			t.Fatal(err)
		}
		if got := s.download(id, "stream.txt"); string(got) != "part one, part two" {
			t.Fatalf("streamed file: %q", got)
		}
		if got := s.download(id, "data.bin"); !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ")
		}
		// The download route redirects to a presigned GET that a plain
		// client can use.
		api := s.url + "/api/v1/jobs/" + id + "/files/"
		resp, _ := rawDo(t, "GET", api+"download/data.bin", "acme-token", nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("download: %d, Location %q", resp.StatusCode, loc)
		}
		if r, got := rawDo(t, "GET", loc, "", nil); r.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("presigned GET: %d, %d bytes", r.StatusCode, len(got))
		}
		// Another client sees no files, as if the job did not exist.
		if _, err := s.other.UploadURL(ctx, id, "evil.bin", 0); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("another client's upload URL: %v", err)
		}
		if _, err := s.other.UploadFile(ctx, id, "data.bin", strings.NewReader("overwrite"), 9); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("another client's upload: %v", err)
		}
		if _, err := s.other.DownloadFile(ctx, id, "data.bin"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("another client's download: %v", err)
		}
		if _, err := s.owner.DownloadFile(ctx, "no-such-job", "data.bin"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("unknown job: %v", err)
		}
		if got := s.download(id, "data.bin"); !bytes.Equal(got, data) {
			t.Fatal("another client changed the file")
		}
		if _, err := s.owner.DownloadFile(ctx, id, "missing.bin"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("missing file: %v", err)
		}
		if r, _ := rawDo(t, "GET", api+"download/data.bin", "", nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("no token: %d", r.StatusCode)
		}
		// Over MAX_UPLOAD_BYTES: 413, and nothing is stored.
		big := randomPayload(3 << 20)
		if _, err := s.owner.UploadFile(ctx, id, "big.bin", bytes.NewReader(big), int64(len(big))); !errors.Is(err, client.ErrTooLarge) {
			t.Errorf("oversized upload: %v", err)
		}
		if _, err := s.owner.UploadFile(ctx, id, "big.bin", io.MultiReader(bytes.NewReader(big)), -1); !errors.Is(err, client.ErrTooLarge) {
			t.Errorf("oversized streamed upload: %v", err)
		}
		if _, err := s.owner.DownloadFile(ctx, id, "big.bin"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("an oversized upload left a file: %v", err)
		}
		if b == "local" {
			// The local backend's presigned PUT has the same limit.
			u, err := s.owner.UploadURL(ctx, id, "big.bin", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := rawDo(t, "PUT", u.URL, "", bytes.NewReader(big)); r.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized presigned PUT: %d", r.StatusCode)
			}
		}
		// Bad file names and parameters: 400.
		for _, q := range []string{"", "filename=", "filename=..", "filename=a%2Fb", "filename=%01x", "filename=a%5Cb",
			"filename=ok&expires_in=0", "filename=ok&expires_in=abc", "filename=ok&expires_in=604801"} {
			if r, body := rawDo(t, "GET", api+"upload?"+q, "acme-token", nil); r.StatusCode != http.StatusBadRequest {
				t.Errorf("upload?%s: %d %s", q, r.StatusCode, body)
			}
		}
		for _, name := range []string{"%2E%2E", "a%2Fb", "%00", "x%0Ay", "a%5Cb"} {
			if r, body := rawDo(t, "PUT", api+"content/"+name, "acme-token", strings.NewReader("x")); r.StatusCode != http.StatusBadRequest {
				t.Errorf("content/%s: %d %s", name, r.StatusCode, body)
			}
			if r, body := rawDo(t, "GET", api+"download/"+name, "acme-token", nil); r.StatusCode != http.StatusBadRequest {
				t.Errorf("download/%s: %d %s", name, r.StatusCode, body)
			}
		}
		if keys := s.keys(id); !slices.Equal(keys, []string{"data.bin", "stream.txt"}) {
			t.Fatalf("objects of the job: %v", keys)
		}
	})
}

func TestBlobFileRoutesDisabled(t *testing.T) {
	t.Parallel()
	s := startBlobs(t, "none", nil)
	ctx := context.Background()
	id, err := s.owner.CreateJob(ctx, "/jobs/files", nil)
	if err != nil {
		t.Fatal(err)
	}
	api := s.url + "/api/v1/jobs/" + id + "/files/"
	for _, c := range []struct{ method, path string }{{"GET", "upload?filename=a"}, {"PUT", "content/a"}, {"GET", "download/a"}} {
		if r, body := rawDo(t, c.method, api+c.path, "acme-token", strings.NewReader("x")); r.StatusCode != http.StatusNotImplemented ||
			!strings.Contains(string(body), "not enabled") {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.StatusCode, body)
		}
	}
}

// bigSkills: echo_big (and echo_big_raw) return a large value, which the
// SDK offloads above its threshold; check_big receives it back restored.
func bigSkills(seen chan<- map[string]any, skills ...string) func(w *worker.Worker) {
	return func(w *worker.Worker) {
		echo := func(ctx context.Context, t *worker.Task) (worker.Result, error) {
			var p struct {
				Payload struct {
					Rows []string `json:"rows"`
					Text string   `json:"text"`
				} `json:"payload"`
				Tag string `json:"tag"`
			}
			if err := t.Decode(&p); err != nil {
				return worker.Result{}, err
			}
			seen <- map[string]any{"rows": len(p.Payload.Rows), "text": len(p.Payload.Text), "tag": p.Tag, "task": t.ID(), "job": t.JobID()}
			return worker.Result{Data: map[string]any{"echo": strings.Repeat(p.Payload.Text, 3), "rows": len(p.Payload.Rows)}}, nil
		}
		check := func(ctx context.Context, t *worker.Task) (worker.Result, error) {
			var p struct {
				Echo string `json:"echo"`
			}
			if err := t.Decode(&p); err != nil {
				return worker.Result{}, err
			}
			if strings.HasPrefix(p.Echo, "s3://") {
				return worker.Result{}, worker.InvalidInput(errors.New("echo arrived as a reference"))
			}
			return worker.Result{Data: map[string]any{"echo_len": len(p.Echo), "echo_prefix": p.Echo[:8]}}, nil
		}
		for _, name := range skills {
			if name == "check_big" {
				w.Handle(name, check)
			} else {
				w.Handle(name, echo)
			}
		}
	}
}

// TestBlobOffloadedParamsAndResults: params above S3_OFFLOAD_THRESHOLD are
// stored as objects (the job record and the payload hold references) and
// restored by the SDK before the handler; result values above it stay
// references in state_history, whether the SDK or the orchestrator moved
// them.
func TestBlobOffloadedParamsAndResults(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		const threshold = 64 << 10
		s := startBlobs(t, b, func(c *orchestrator.Config) { c.OffloadThreshold = threshold })
		seen := make(chan map[string]any, 4)
		s.addWorker("sdk", bigSkills(seen, "echo_big", "check_big"), func(c *worker.Config) { c.OffloadThreshold = threshold })
		// This worker never offloads its results, like a worker of another
		// SDK: the orchestrator stores the large value itself.
		s.addWorker("raw", bigSkills(seen, "echo_big_raw"), func(c *worker.Config) { c.OffloadThreshold = -1 })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rows := make([]any, 2000)
		for i := range rows {
			rows[i] = strings.Repeat("r", 50)
		}
		text := strings.Repeat("The quick brown fox <jumps> & \"quotes\". ", 1000) // 40 KB
		for _, skill := range []string{"echo_big", "echo_big_raw"} {
			id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"mode": "inline", "skill": skill,
				"payload": map[string]any{"rows": rows, "text": text}})
			if err != nil {
				t.Fatal(err)
			}
			got := <-seen
			if got["rows"] != 2000 || got["text"] != len(text) || got["tag"] != "small" || got["job"] != id {
				t.Fatalf("%s: the handler saw %v", skill, got)
			}
			job, err := s.owner.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			echoRef, _ := job.StateHistory["echo"].(string)
			if job.Status != protocol.StatusFinished || !strings.HasPrefix(echoRef, "s3://"+s.store.Bucket()+"/jobs/"+id+"/results/") ||
				job.StateHistory["echo_len"] != float64(3*len(text)) || job.StateHistory["echo_prefix"] != text[:8] {
				t.Fatalf("%s: job %s %q: state_history %v", skill, job.Status, job.ErrorMessage, job.StateHistory)
			}
			// The offloaded params and result are objects of the job.
			keys := s.keys(id)
			if !slices.Contains(keys, "params/"+got["task"].(string)+"/payload.json") || !slices.Contains(keys, "results/"+got["task"].(string)+"/echo.json") {
				t.Fatalf("%s: objects %v", skill, keys)
			}
		}
	})
}

// TestBlobOffloadedParamsInTheJobRecord looks inside: the live job record
// holds the reference and params metadata with the inline marker.
func TestBlobOffloadedParamsInTheJobRecord(t *testing.T) {
	t.Parallel()
	s := startBlobs(t, "local", func(c *orchestrator.Config) { c.OffloadThreshold = 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := map[string]any{"text": strings.Repeat("x", 5000)}
	id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"mode": "inline", "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	var j *orchestrator.Job
	testenv.WaitUntil(t, "the task", 10*time.Second, func() bool {
		j, err = s.o.Job(ctx, id)
		return err == nil && len(j.Tasks) == 1
	})
	for _, run := range j.Tasks {
		ref, _ := run.Spec.Params["payload"].(string)
		md := run.ParamsMetadata["payload"]
		if !strings.HasPrefix(ref, "s3://") || md.URI != ref || md.Size != 5011 || md.Metadata["inline"] != true || md.Metadata["encoding"] != "json" ||
			run.Spec.Params["tag"] != "small" {
			t.Fatalf("task params %v, metadata %+v", run.Spec.Params, run.ParamsMetadata)
		}
		u, _ := blob.ParseURI(ref)
		rc, _, err := s.store.Get(ctx, u.Key)
		stored := readAllClose(t, rc, err)
		if !reflect.DeepEqual(decodeJSON(t, stored), payload) {
			t.Fatalf("stored %s", stored[:40])
		}
	}
	if !j.Blobs {
		t.Fatal("the job is not marked as having blobs")
	}
}

// TestBlobCleanupAfterRetention: a job's objects (uploads, offloaded
// params, result files) are deleted once its retention ends.
func TestBlobCleanupAfterRetention(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startBlobs(t, b, func(c *orchestrator.Config) { c.JobRetention = 2 * time.Second })
		s.addWorker("digester", digestSkill, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id, job := s.runUploadJob(ctx)
		if keys := s.keys(id); !slices.Equal(keys, []string{"in.txt", "result.bin"}) {
			t.Fatalf("objects right after the end: %v", keys)
		}
		testenv.WaitUntil(t, "the objects to be deleted", 20*time.Second, func() bool { return len(s.keys(id)) == 0 })
		if gone := time.Since(*job.FinishedAt); gone < 2*time.Second {
			t.Fatalf("objects deleted %s after the end, before the retention", gone)
		}
	})
}

func decodeJSON(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := protocol.DecodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	return plain(v)
}

// plain turns json.Number into float64 for comparisons.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	}
	return v
}

// TestBlobStorageStoppedMidJob stops a private MinIO while a worker runs a
// task: the worker cannot upload its result file, and the job fails with a
// message that says so; nothing half-written appears once MinIO is back.
// While MinIO is down, uploads answer 503 and a job whose params must be
// offloaded fails with a clear message too.
func TestBlobStorageStoppedMidJob(t *testing.T) {
	t.Parallel()
	m := s3env.StartMinIO(t)
	access, secret := s3env.Credentials()
	opts := blobs3.Options{Endpoint: m.Endpoint, AccessKey: access, SecretKey: secret, Bucket: s3env.UniqueBucket(), MaxRetries: 1}
	s := startBlobsOn(t, "s3", opts, func(c *orchestrator.Config) {
		c.MaxRetries = -1 // the task's first failure is the job's
		c.OffloadThreshold = 1000
	})
	started, proceed := make(chan string, 1), make(chan struct{})
	s.addWorker("slow", func(w *worker.Worker) {
		w.Handle("digest", func(ctx context.Context, t *worker.Task) (worker.Result, error) {
			var p struct {
				Input string `json:"input"`
			}
			if err := t.Decode(&p); err != nil {
				return worker.Result{}, err
			}
			data, err := os.ReadFile(p.Input)
			if err != nil {
				return worker.Result{}, err
			}
			started <- t.ID()
			<-proceed // meanwhile MinIO goes down
			out, err := t.Path("result.bin")
			if err != nil {
				return worker.Result{}, err
			}
			if err := os.WriteFile(out, bytes.Repeat(data, 8), 0o644); err != nil {
				return worker.Result{}, err
			}
			return worker.Result{Data: map[string]any{"output": out}}, nil
		})
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"file": "input.bin"})
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(id, protocol.StatusWaitingForHuman)
	input := randomPayload(3 << 20)
	if _, err := s.owner.UploadFile(ctx, id, "input.bin", bytes.NewReader(input), int64(len(input))); err != nil {
		t.Fatal(err)
	}
	if err := s.owner.Approve(ctx, id, "uploaded"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the task did not start")
	}
	m.Stop()
	close(proceed)

	job, err := s.owner.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	wantMsg := "upload result file result.bin to s3://" + opts.Bucket + "/jobs/" + id + "/result.bin"
	if job.Status != protocol.StatusFailed || !strings.Contains(job.ErrorMessage, wantMsg) || job.StateHistory["output"] != nil {
		t.Fatalf("job %s: %s %q (want a message with %q)", id, job.Status, job.ErrorMessage, wantMsg)
	}
	t.Logf("the job failed with: %s", job.ErrorMessage)

	// Uploads through the orchestrator answer 503 meanwhile.
	_, err = s.owner.UploadFile(ctx, id, "late.bin", strings.NewReader("late"), 4)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || !strings.Contains(apiErr.Message, "blob storage unavailable") {
		t.Errorf("upload while MinIO is down: %v", err)
	}
	// A job whose params must be offloaded fails with a clear message.
	id2, err := s.owner.CreateJob(ctx, "/jobs/files", map[string]any{"mode": "inline", "payload": map[string]any{"text": strings.Repeat("z", 5000)}})
	if err != nil {
		t.Fatal(err)
	}
	job2, err := s.owner.Wait(ctx, id2, client.PollEvery(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if job2.Status != protocol.StatusFailed || !strings.Contains(job2.ErrorMessage, "could not store the task params in blob storage") {
		t.Fatalf("offload while MinIO is down: %s %q", job2.Status, job2.ErrorMessage)
	}
	t.Logf("the offloading job failed with: %s", job2.ErrorMessage)

	// Back up: only the input exists; no partial result, no late file.
	m.Start()
	if keys := s.keys(id); !slices.Equal(keys, []string{"input.bin"}) {
		t.Fatalf("objects of the job after the outage: %v", keys)
	}
	if keys := s.keys(id2); len(keys) != 0 {
		t.Fatalf("objects of the offloading job: %v", keys)
	}
}

// TestBlobCleanupWithRedis: two orchestrators share Redis and a blob
// folder; the cleanup timer, a durable timer in Redis, deletes the job's
// objects when its retention ends, whichever orchestrator claims it.
func TestBlobCleanupWithRedis(t *testing.T) {
	t.Parallel()
	url, prefix := redisForTest(t)
	key := "shared-signing-key"
	var dir string
	mutate := func(c *orchestrator.Config) {
		c.RedisURL, c.RedisPrefix, c.JobRetention, c.BlobSigningKey = url, prefix, 2*time.Second, key
		dir = c.BlobDir
	}
	s := startBlobs(t, "local", mutate)
	cfg := orchestrator.Config{Logger: quiet(), RedisURL: url, RedisPrefix: prefix, JobRetention: 2 * time.Second, BlobDir: dir,
		BlobSigningKey: key, GlobalWorkerToken: "fleet-token"}
	o2, err := orchestrator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Register(filesBlueprint()); err != nil {
		t.Fatal(err)
	}
	if err := o2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o2.Close(context.Background()) })
	s.addWorker("digester", digestSkill, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, _ := s.runUploadJob(ctx)
	if keys := s.keys(id); len(keys) != 2 {
		t.Fatalf("objects right after the end: %v", keys)
	}
	testenv.WaitUntil(t, "the objects to be deleted", 20*time.Second, func() bool { return len(s.keys(id)) == 0 })
}

// TestBlobForeignReferencesRefused: a client cannot make a worker read
// another client's files. Client A uploads a file to its job; client B's
// job whose params refer to it (as the showcase's process_blobs forwards
// initial_data.inputs) fails with a clear message and no worker receives
// its task. B referring to a file of its own earlier job works.
func TestBlobForeignReferencesRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startBlobs(t, b, nil)
		seen := make(chan string, 8)
		s.addWorker("peeker", peekSkill(seen), nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		upload := func(c *client.Client, name, content string) (jobID, uri string) {
			t.Helper()
			id, err := c.CreateJob(ctx, "/jobs/files", nil)
			if err != nil {
				t.Fatal(err)
			}
			up, err := c.UploadFile(ctx, id, name, strings.NewReader(content), int64(len(content)))
			if err != nil {
				t.Fatal(err)
			}
			return id, up.S3URI
		}
		forward := func(c *client.Client, inputs ...string) *protocol.Job {
			t.Helper()
			id, err := c.CreateJob(ctx, "/jobs/files", map[string]any{"mode": "forward", "inputs": inputs})
			if err != nil {
				t.Fatal(err)
			}
			j, err := c.Wait(ctx, id, client.PollEvery(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			return j
		}

		secretJob, secret := upload(s.owner, "secret.txt", "acme's secret")
		_, mine := upload(s.other, "mine.txt", "rival's own data")
		const foreign, every = "which belongs to another client", "which covers other clients' objects"
		for _, tc := range []struct {
			refs   []string
			reason string
		}{
			{[]string{secret}, foreign},
			{[]string{mine, secret}, foreign}, // one foreign reference among the client's own
			{[]string{"s3://" + s.store.Bucket() + "/jobs/" + secretJob + "/"}, foreign}, // the whole job prefix
			{[]string{"s3://" + s.store.Bucket() + "/jobs/"}, every},
		} {
			j := forward(s.other, tc.refs...)
			want := `task "peek" params reference ` + tc.refs[len(tc.refs)-1] + " " + tc.reason
			if j.Status != protocol.StatusFailed || !strings.Contains(j.ErrorMessage, want) {
				t.Fatalf("rival's job referring to %v: %s %q, want failed with %q", tc.refs, j.Status, j.ErrorMessage, want)
			}
		}
		j := forward(s.other, mine)
		if j.Status != protocol.StatusFinished || !reflect.DeepEqual(j.StateHistory["sha256"], []any{sha256Hex([]byte("rival's own data"))}) {
			t.Fatalf("rival's job referring to its own file: %s %q, state_history %v", j.Status, j.ErrorMessage, j.StateHistory)
		}
		// The owner may hand its file to a later job of its own.
		j = forward(s.owner, secret)
		if j.Status != protocol.StatusFinished || !reflect.DeepEqual(j.StateHistory["sha256"], []any{sha256Hex([]byte("acme's secret"))}) {
			t.Fatalf("acme's job referring to its own file: %s %q", j.Status, j.ErrorMessage)
		}
		if n := len(seen); n != 2 {
			t.Fatalf("the worker received %d tasks, want only the 2 allowed ones", n)
		}
	})
}
