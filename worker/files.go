package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
)

// openBlobs returns the configured blob store: Config.Blobs, else S3 when
// configured (no request is made before the first transfer), else a local
// folder when BlobDir is set, else nil. own says New opened it.
func openBlobs(cfg Config) (st blob.Store, own bool, err error) {
	switch {
	case cfg.Blobs != nil:
		return cfg.Blobs, false, nil
	case cfg.S3.Configured():
		s, err := blobs3.New(cfg.S3)
		if err != nil {
			return nil, false, fmt.Errorf("worker: %w", err)
		}
		cfg.Logger.Info("blob storage: S3", "endpoint", cfg.S3.Endpoint, "bucket", s.Bucket())
		return s, true, nil
	case cfg.BlobDir != "":
		s, err := local.Open(local.Options{Dir: cfg.BlobDir, Bucket: cfg.S3.Bucket})
		if err != nil {
			return nil, false, fmt.Errorf("worker: %w", err)
		}
		cfg.Logger.Info("blob storage: local folder", "dir", s.Dir(), "bucket", s.Bucket())
		return s, true, nil
	}
	return nil, false, nil
}

// s3ConfigHash is capabilities.s3_config_hash: set when the worker uses S3.
func (w *Worker) s3ConfigHash() string {
	if w.blobs == nil {
		return ""
	}
	return blob.ConfigHash(w.blobs)
}

// taskDirName is the folder name of a task under TaskFilesDir: its id, or a
// hash of it when the id is not a safe file name.
func taskDirName(taskID string) string {
	if blob.ValidName(taskID) == nil && !strings.HasPrefix(taskID, ".") {
		return taskID
	}
	sum := sha256.Sum256([]byte(taskID))
	return "task-" + hex.EncodeToString(sum[:12])
}

// Blobs returns the worker's blob storage (nil when it has none), for
// handlers that read or write objects themselves.
func (t *Task) Blobs() blob.Store { return t.w.blobs }

// Dir returns the task's own folder, <TaskFilesDir>/<task_id>, creating it.
// Downloaded s3:// params land there. It is deleted when the task ends,
// after the files the handler returned have been uploaded: a result value
// that is the path of a file or folder under TaskFilesDir is uploaded to
// blob storage (s3://<bucket>/jobs/<job_id>/<name>) and replaced by its
// URI, when the worker has blob storage.
func (t *Task) Dir() (string, error) {
	t.dirUsed.Store(true)
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return "", fmt.Errorf("task folder: %w", err)
	}
	return t.dir, nil
}

// Path returns the path of a file in the task's folder, creating the folder
// and the file's parent folders. name is relative, "/"-separated, and
// stays inside the folder ("report.txt", "frames/0001.png").
func (t *Task) Path(name string) (string, error) {
	if err := blob.ValidKey(name); err != nil {
		return "", fmt.Errorf("task file %q: %w", name, err)
	}
	p := filepath.Join(t.dir, filepath.FromSlash(name))
	t.dirUsed.Store(true)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("task file %q: %w", name, err)
	}
	return p, nil
}

// removeDir deletes the task's folder, if it was asked for.
func (t *Task) removeDir() {
	if !t.dirUsed.Load() {
		return
	}
	if err := os.RemoveAll(t.dir); err != nil {
		t.Logger().Warn("could not delete the task folder", "dir", t.dir, "error", err)
	}
}
