package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/internal/offload"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func localBlobs(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func putObject(t *testing.T, st blob.Store, key, body string) protocol.FileMetadata {
	t.Helper()
	info, err := st.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return protocol.FileMetadata{URI: blob.NewURI(st.Bucket(), key), Size: info.Size, ETag: info.ETag}
}

func readObject(t *testing.T, st blob.Store, key string) string {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func blobConfig(t *testing.T, f *fakeOrch, st blob.Store) Config {
	cfg := testConfig(f.URL())
	cfg.Blobs = st
	cfg.TaskFilesDir = t.TempDir()
	return cfg
}

func errorOf(r received) (code, msg string) {
	e, _ := r.Doc["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

// TestBlobParamsAndResultFiles: s3:// params (nested, a prefix, offloaded
// JSON) reach the handler as local files and values; files and folders the
// handler returns are uploaded and reported in data_metadata; the task
// folder is gone afterwards.
func TestBlobParamsAndResultFiles(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	st := localBlobs(t)
	in := putObject(t, st, "jobs/j1/in.txt", "input bytes")
	other := putObject(t, st, "jobs/j0/in.txt", "same name, other job")
	putObject(t, st, "jobs/j1/set/a.txt", "A")
	putObject(t, st, "jobs/j1/set/sub/b.txt", "B")
	big := putObject(t, st, "jobs/j1/params/t1/big.json", `{"rows":[1,2,3],"ref":"`+in.URI+`"}`)
	big.Metadata = offload.Marker()

	cfg := blobConfig(t, f, st)
	w := newWorker(t, cfg)
	var taskDir string
	w.Handle("process", func(ctx context.Context, tk *Task) (Result, error) {
		var p struct {
			File   string `json:"file"`
			Nested struct {
				List []any `json:"list"`
			} `json:"nested"`
			Dir string `json:"dir"`
			Big struct {
				Rows []int `json:"rows"`
				Ref  string
			} `json:"big"`
		}
		if err := tk.Decode(&p); err != nil {
			return Result{}, err
		}
		dir, err := tk.Dir()
		if err != nil {
			return Result{}, err
		}
		taskDir = dir
		check := func(path, want string) {
			b, err := os.ReadFile(path)
			if err != nil || string(b) != want || !strings.HasPrefix(path, dir+"/") {
				t.Errorf("%s: %q %v (task folder %s)", path, b, err, dir)
			}
		}
		check(p.File, "input bytes")
		check(p.Nested.List[0].(string), "same name, other job")
		check(filepath.Join(p.Dir, "a.txt"), "A")
		check(filepath.Join(p.Dir, "sub", "b.txt"), "B")
		check(p.Big.Ref, "input bytes")
		if len(p.Big.Rows) != 3 || p.Nested.List[1] != 5.0 || p.Nested.List[2] != "plain" {
			t.Errorf("params %+v", p)
		}
		report, err := tk.Path("report.txt")
		if err != nil {
			return Result{}, err
		}
		if err := os.WriteFile(report, []byte("the report"), 0o644); err != nil {
			return Result{}, err
		}
		frame, _ := tk.Path("frames/1.txt")
		_ = os.WriteFile(frame, []byte("frame one"), 0o644)
		if _, err := tk.Path("../escape"); err == nil {
			t.Error("Path accepted ../escape")
		}
		return Result{Data: map[string]any{
			"report": report, "frames": filepath.Dir(frame), "nested": map[string]any{"copy": []string{p.File}},
			"text": "not a path", "outside": "/etc/hostname", "missing": filepath.Join(dir, "nope.txt"),
		}}, nil
	})
	startWorker(t, w)
	p := task("t1", "process", map[string]any{
		"file": in.URI, "nested": map[string]any{"list": []any{other.URI, 5, "plain"}}, "dir": "s3://" + st.Bucket() + "/jobs/j1/set/", "big": big.URI,
	})
	p.JobID = "j1"
	p.ParamsMetadata = map[string]protocol.FileMetadata{"file": in, "nested.list[0]": other, "big": big}
	f.enqueue(p)
	r := f.waitResult("t1")
	if r.str("status") != "success" {
		t.Fatalf("result %s", r.Raw)
	}
	var res protocol.TaskResult
	if err := strictUnmarshal(r.Raw, &res); err != nil {
		t.Fatal(err)
	}
	bucket := st.Bucket()
	if res.Data["report"] != "s3://"+bucket+"/jobs/j1/report.txt" || res.Data["frames"] != "s3://"+bucket+"/jobs/j1/frames/" ||
		res.Data["text"] != "not a path" || res.Data["outside"] != "/etc/hostname" {
		t.Fatalf("data %v", res.Data)
	}
	if cp := res.Data["nested"].(map[string]any)["copy"].([]any)[0]; cp != "s3://"+bucket+"/jobs/j1/in.txt" {
		t.Fatalf("nested returned file: %v", cp)
	}
	md := res.DataMetadata["report"]
	if md.Size != 10 || md.ETag == "" || md.URI != res.Data["report"] || res.DataMetadata["nested.copy[0]"].URI == "" || res.DataMetadata["frames"].Size != 9 {
		t.Fatalf("data_metadata %+v", res.DataMetadata)
	}
	if readObject(t, st, "jobs/j1/report.txt") != "the report" || readObject(t, st, "jobs/j1/frames/1.txt") != "frame one" {
		t.Fatal("uploaded content differs")
	}
	if _, err := os.Stat(taskDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("task folder %s still there: %v", taskDir, err)
	}
}

func TestBlobIntegrityMismatchSkipsTheHandler(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	st := localBlobs(t)
	in := putObject(t, st, "jobs/j1/in.txt", "input bytes")
	var called atomic.Int32
	w := newWorker(t, blobConfig(t, f, st))
	w.Handle("process", func(ctx context.Context, tk *Task) (Result, error) {
		called.Add(1)
		return Result{}, nil
	})
	startWorker(t, w)
	for i, md := range []protocol.FileMetadata{
		{URI: in.URI, Size: in.Size + 1, ETag: in.ETag},
		{URI: in.URI, Size: in.Size, ETag: `"0123456789abcdef0123456789abcdef"`},
	} {
		p := task("bad-"+string(rune('a'+i)), "process", map[string]any{"x": map[string]any{"file": in.URI}})
		p.ParamsMetadata = map[string]protocol.FileMetadata{"x.file": md}
		f.enqueue(p)
		r := f.waitResult(p.TaskID)
		if code, msg := errorOf(r); code != protocol.ErrIntegrityMismatch || !strings.Contains(msg, "params.x.file") {
			t.Errorf("result %s", r.Raw)
		}
	}
	// A missing object is the input's fault.
	f.enqueue(task("missing", "process", map[string]any{"file": "s3://" + st.Bucket() + "/jobs/j1/nope"}))
	if code, msg := errorOf(f.waitResult("missing")); code != protocol.ErrInvalidInput || !strings.Contains(msg, "not found") {
		t.Errorf("missing object: %s %s", code, msg)
	}
	f.enqueue(task("bad-uri", "process", map[string]any{"file": "s3://B/../x"}))
	if code, _ := errorOf(f.waitResult("bad-uri")); code != protocol.ErrInvalidInput {
		t.Errorf("bad URI: %s", code)
	}
	if called.Load() != 0 {
		t.Fatalf("the handler ran %d times", called.Load())
	}
}

// TestBlobLargeResultValuesAreOffloaded: values over OffloadThreshold go
// to blob storage as JSON objects with the inline marker.
func TestBlobLargeResultValuesAreOffloaded(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	st := localBlobs(t)
	cfg := blobConfig(t, f, st)
	cfg.OffloadThreshold = 1000
	w := newWorker(t, cfg)
	long := strings.Repeat("ü", 2000)
	w.Handle("gen", func(ctx context.Context, tk *Task) (Result, error) {
		return Result{Data: map[string]any{"long": long, "small": 1}}, nil
	})
	startWorker(t, w)
	p := task("t-big", "gen", nil)
	p.JobID = "j2"
	f.enqueue(p)
	var res protocol.TaskResult
	if err := strictUnmarshal(f.waitResult("t-big").Raw, &res); err != nil {
		t.Fatal(err)
	}
	md := res.DataMetadata["long"]
	if res.Data["long"] != md.URI || !offload.IsInlineJSON(md) || res.Data["small"] != 1.0 {
		t.Fatalf("result %+v", res)
	}
	if got := readObject(t, st, "jobs/j2/results/t-big/long.json"); got != `"`+long+`"` {
		t.Fatalf("stored %q", got[:20])
	}
}

// TestBlobStorageDown: an unreachable S3 fails the task with a transient
// error that names the transfer, and a failed download skips the handler.
func TestBlobStorageDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.TaskFilesDir = t.TempDir()
	cfg.S3 = blobs3.Options{Endpoint: dead, AccessKey: "k", SecretKey: "s", Bucket: "payloads", MaxRetries: 1}
	w := newWorker(t, cfg)
	var called atomic.Int32
	w.Handle("process", func(ctx context.Context, tk *Task) (Result, error) {
		called.Add(1)
		p, _ := tk.Path("out.bin")
		_ = os.WriteFile(p, []byte("result"), 0o644)
		return Result{Data: map[string]any{"out": p}}, nil
	})
	startWorker(t, w)
	f.enqueue(task("dl", "process", map[string]any{"in": "s3://payloads/jobs/j/in.bin"}))
	if code, msg := errorOf(f.waitResult("dl")); code != protocol.ErrTransient || !strings.Contains(msg, "download params.in (s3://payloads/jobs/j/in.bin)") {
		t.Errorf("download failure: %s %s", code, msg)
	}
	if called.Load() != 0 {
		t.Error("the handler ran without its input")
	}
	up := task("ul", "process", nil)
	up.JobID = "j"
	f.enqueue(up)
	if code, msg := errorOf(f.waitResult("ul")); code != protocol.ErrTransient || !strings.Contains(msg, "upload result file out.bin to s3://payloads/jobs/j/out.bin") {
		t.Errorf("upload failure: %s %s", code, msg)
	}
	// Registration carries the S3 configuration hash.
	regs, _, _, _ := f.snapshot()
	sum := sha256.Sum256([]byte(dead + "|k|payloads"))
	caps := regs[0].Doc["capabilities"].(map[string]any)
	if caps["s3_config_hash"] != hex.EncodeToString(sum[:])[:16] {
		t.Errorf("s3_config_hash %v", caps["s3_config_hash"])
	}
}

// TestBlobStorageOff: without blob storage, s3:// values reach the handler
// untouched and returned paths stay paths.
func TestBlobStorageOff(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.TaskFilesDir = t.TempDir()
	w := newWorker(t, cfg)
	w.Handle("echo", echo)
	startWorker(t, w)
	f.enqueue(task("off", "echo", map[string]any{"file": "s3://bucket/jobs/j/x"}))
	r := f.waitResult("off")
	if d := r.Doc["data"].(map[string]any); d["file"] != "s3://bucket/jobs/j/x" {
		t.Fatalf("%s", r.Raw)
	}
	regs, _, _, _ := f.snapshot()
	if h, ok := regs[0].Doc["capabilities"].(map[string]any)["s3_config_hash"]; ok {
		t.Fatalf("s3_config_hash without S3: %v", h)
	}
}

func TestBlobEnv(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromVars(map[string]string{
		"S3_ENDPOINT_URL": "http://minio:9000", "S3_ACCESS_KEY": "ak", "S3_SECRET_KEY": "sk", "S3_DEFAULT_BUCKET": "files",
		"S3_REGION": "eu-central-1", "S3_FORCE_PATH_STYLE": "true", "TASK_FILES_DIR": "/var/tmp/tasks", "S3_OFFLOAD_THRESHOLD": "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.S3.Endpoint != "http://minio:9000" || cfg.S3.AccessKey != "ak" || cfg.S3.Bucket != "files" || cfg.S3.Region != "eu-central-1" ||
		cfg.S3.PathStyle != blobs3.PathForce || cfg.TaskFilesDir != "/var/tmp/tasks" || cfg.OffloadThreshold != -1 {
		t.Fatalf("%+v", cfg)
	}
	if _, err := ConfigFromVars(map[string]string{"S3_ENDPOINT_URL": "http://minio:9000"}); err == nil || !strings.Contains(err.Error(), "S3_ACCESS_KEY") {
		t.Fatalf("partial S3 configuration: %v", err)
	}
	cfg, err = ConfigFromVars(map[string]string{"BLOB_DIR": "/srv/blobs"})
	if err != nil || cfg.BlobDir != "/srv/blobs" || cfg.S3.Configured() {
		t.Fatalf("%+v %v", cfg, err)
	}
}

func TestTaskDirName(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"task-1", "../../etc", ".hidden", "a/b", ""} {
		name := taskDirName(id)
		if blob.ValidName(name) != nil || strings.HasPrefix(name, ".") || bytes.ContainsAny([]byte(name), "/\\") {
			t.Errorf("%q → %q", id, name)
		}
	}
}

// TestTaskFolderRemoved: a folder made through Task.Path is deleted when
// the task ends, before its result is sent, without blob storage too.
func TestTaskFolderRemoved(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	cfg := testConfig(f.URL())
	cfg.TaskFilesDir = t.TempDir()
	w := newWorker(t, cfg)
	w.Handle("write", func(ctx context.Context, tk *Task) (Result, error) {
		p, err := tk.Path("frames/0001.txt")
		if err != nil {
			return Result{}, err
		}
		return Result{}, os.WriteFile(p, []byte("frame"), 0o644)
	})
	startWorker(t, w)
	f.enqueue(task("files", "write", nil))
	if r := f.waitResult("files"); r.str("status") != protocol.TaskSuccess {
		t.Fatalf("%s", r.Raw)
	}
	left, err := os.ReadDir(cfg.TaskFilesDir)
	if err != nil || len(left) != 0 {
		t.Errorf("task files folder holds %v (%v), want nothing", left, err)
	}
}
