package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/internal/offload"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Blob objects the engine writes, under the job's prefix:
//
//	jobs/<job_id>/params/<task_id>/<name>.json   offloaded task params
//	jobs/<job_id>/results/<task_id>/<name>.json  offloaded result values

func (e *Engine) blobBucket() string {
	if e.cfg.Blobs == nil {
		return ""
	}
	return e.cfg.Blobs.Bucket()
}

func (e *Engine) offloading() bool { return e.cfg.Blobs != nil && e.cfg.OffloadThreshold >= 0 }

// offloadParams stores the large params of the tasks an action dispatches,
// before the step's write, and returns their params metadata by task
// index. The action's params maps are replaced, never changed in place
// (a handler may have passed a map it still shares).
func (e *Engine) offloadParams(ctx context.Context, jobID string, out *blueprint.Outcome, ids stepIDs) ([]map[string]protocol.FileMetadata, error) {
	if !e.offloading() {
		return nil, nil
	}
	switch a := out.Action.(type) {
	case blueprint.DispatchAction:
		md, err := e.offloadTask(ctx, jobID, ids.task, &a.Task)
		if err != nil || md == nil {
			return nil, err
		}
		out.Action = a
		return []map[string]protocol.FileMetadata{md}, nil
	case blueprint.ParallelAction:
		var all []map[string]protocol.FileMetadata
		tasks := slices.Clone(a.Tasks)
		for i := range tasks {
			md, err := e.offloadTask(ctx, jobID, ids.branch(i), &tasks[i])
			if err != nil {
				return nil, err
			}
			if md != nil {
				if all == nil {
					all = make([]map[string]protocol.FileMetadata, len(tasks))
				}
				all[i] = md
			}
		}
		if all != nil {
			a.Tasks = tasks
			out.Action = a
		}
		return all, nil
	}
	return nil, nil
}

func (e *Engine) offloadTask(ctx context.Context, jobID, taskID string, task *blueprint.Task) (map[string]protocol.FileMetadata, error) {
	if !offload.MayExceed(task.Params, e.cfg.OffloadThreshold) {
		return nil, nil // the common case: no copy, no encoding
	}
	params := maps.Clone(task.Params)
	md, err := offload.Values(ctx, e.cfg.Blobs, params, e.cfg.OffloadThreshold, func(name string) string {
		return blob.JobPrefix(jobID) + "params/" + taskID + "/" + offload.ObjectName(name)
	})
	if err != nil {
		return nil, fmt.Errorf("task %s (%s): %w", taskID, task.Type, err)
	}
	if md != nil {
		task.Params = params
	}
	return md, nil
}

// attachMetadata sets a new task's params metadata.
func (e *Engine) attachMetadata(j *store.Job, run *store.TaskRun, offloaded map[string]protocol.FileMetadata) {
	if len(offloaded) > 0 {
		j.Blobs = true
	}
	run.ParamsMetadata = paramsMetadata(j, run.Spec.Params, offloaded)
}

// paramsMetadata is the params_metadata of a new task: the values offloaded
// for it, plus, for every top-level param that refers to an object a
// result described (data_metadata), that description, so that the worker
// can check the object and restore offloaded JSON.
func paramsMetadata(j *store.Job, params map[string]any, offloaded map[string]protocol.FileMetadata) map[string]protocol.FileMetadata {
	out := offloaded
	if len(j.DataMetadata) == 0 {
		return out
	}
	for name, v := range params {
		s, ok := v.(string)
		if !ok || !blob.IsURI(s) {
			continue
		}
		if _, done := out[name]; done {
			continue
		}
		if md, ok := j.DataMetadata[s]; ok {
			if out == nil {
				out = map[string]protocol.FileMetadata{}
			}
			md.Metadata = store.CloneMap(md.Metadata)
			out[name] = md
		}
	}
	return out
}

// offloadResult stores the large values of a successful result's data, so
// that state_history keeps references (workers of our SDK do it
// themselves; this covers the others). Failing that, the data stays inline
// and a warning is logged: the result itself is not lost.
func (e *Engine) offloadResult(ctx context.Context, workerID string, res *protocol.TaskResult, status string) {
	if !e.offloading() || status == protocol.TaskFailure || !offload.MayExceed(res.Data, e.cfg.OffloadThreshold) {
		return
	}
	// Do not write objects for a result that will be ignored anyway.
	if j, err := e.store.GetJob(ctx, res.JobID); err != nil {
		return
	} else if reason, _ := ignoreReason(j, res.TaskID, workerID); reason != "" {
		return
	}
	data := maps.Clone(res.Data)
	md, err := offload.Values(ctx, e.cfg.Blobs, data, e.cfg.OffloadThreshold, func(name string) string {
		return blob.JobPrefix(res.JobID) + "results/" + res.TaskID + "/" + offload.ObjectName(name)
	})
	if err != nil {
		e.log.Warn("could not offload a large result to blob storage; it stays inline", "job_id", res.JobID, "task_id", res.TaskID, "error", err)
		return
	}
	if md == nil {
		return
	}
	res.Data = data
	all := store.CloneFileMetadata(res.DataMetadata)
	if all == nil {
		all = map[string]protocol.FileMetadata{}
	}
	maps.Copy(all, md)
	res.DataMetadata = all
}

// mergeDataMetadata records the objects a result described, by URI.
func mergeDataMetadata(j *store.Job, md map[string]protocol.FileMetadata) {
	for _, m := range md {
		if !blob.IsURI(m.URI) {
			continue
		}
		if j.DataMetadata == nil {
			j.DataMetadata = map[string]protocol.FileMetadata{}
		}
		m.Metadata = store.CloneMap(m.Metadata)
		j.DataMetadata[m.URI] = m
		j.Blobs = true
	}
}

// armBlobCleanup schedules the deletion of an ended job's objects.
func (e *Engine) armBlobCleanup(t *txn, j *store.Job) {
	if !j.Blobs || e.cfg.Blobs == nil || e.cfg.BlobCleanupAfter <= 0 || j.FinishedAt == nil {
		return
	}
	t.fx.Timers = append(t.fx.Timers, store.Timer{JobID: j.ID, Kind: store.TimerBlobs, At: j.FinishedAt.Add(e.cfg.BlobCleanupAfter)})
}

// UseBlobs records that a job has objects in blob storage (a client
// uploads a file), so that they are deleted when its retention ends.
func (e *Engine) UseBlobs(ctx context.Context, jobID string) error {
	_, err := e.mutate(ctx, jobID, func(t *txn, j *store.Job) error {
		if j.Blobs && !j.Status.Terminal() {
			return errSkip
		}
		j.Blobs = true
		if j.Status.Terminal() {
			e.armBlobCleanup(t, j)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrJobNotFound, jobID)
	}
	return err
}

// cleanBlobs deletes a job's objects (a TimerBlobs fired).
func (e *Engine) cleanBlobs(ctx context.Context, jobID string) error {
	if e.cfg.Blobs == nil {
		return nil
	}
	n, err := e.cfg.Blobs.DeletePrefix(ctx, blob.JobPrefix(jobID))
	if err != nil {
		return fmt.Errorf("delete the objects of job %s: %w", jobID, err)
	}
	e.log.Info("deleted the blob objects of an expired job", "job_id", jobID, "objects", n)
	return nil
}
