package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

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

// checkParamRefs refuses the tasks an action dispatches when their params
// (nested values included: workers fetch every s3:// string) refer to
// another client's objects. Objects under jobs/<id>/ of the orchestrator's
// bucket belong to job <id>'s client; a reference to them is allowed only
// when that job has the dispatching job's client (its own objects, those
// of an earlier job or of its parent or child jobs). A job the store does
// not know (never existed, or expired) counts as another client's. Other
// buckets and keys outside jobs/ are not tenant data.
//
// A refused reference is a *refError, which fails the job at once; other
// errors come from the store.
func (e *Engine) checkParamRefs(ctx context.Context, j *store.Job, out blueprint.Outcome) error {
	var tasks []blueprint.Task
	switch a := out.Action.(type) {
	case blueprint.DispatchAction:
		tasks = []blueprint.Task{a.Task}
	case blueprint.ParallelAction:
		tasks = a.Tasks
	default:
		return nil
	}
	bucket := e.tenantBucket()
	allowed := map[string]bool{j.ID: true} // job id → same client, looked up once
	for _, task := range tasks {
		var err error
		walkStrings(task.Params, func(s string) bool {
			err = e.checkRef(ctx, j, bucket, s, allowed)
			return err == nil
		})
		var re *refError
		if errors.As(err, &re) {
			re.State, re.Task = j.CurrentState, task.Type
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tenantBucket is the bucket whose jobs/ prefix holds the files of jobs:
// the orchestrator's, or without blob storage the default one, where
// workers of our SDK upload result files.
func (e *Engine) tenantBucket() string {
	if b := e.blobBucket(); b != "" {
		return b
	}
	return blob.DefaultBucket
}

// checkRef checks one string of a task's params.
func (e *Engine) checkRef(ctx context.Context, j *store.Job, bucket, s string, allowed map[string]bool) error {
	owner, tenant, err := refOwner(s, bucket)
	if err != nil {
		return &refError{Ref: s, Reason: fmt.Sprintf("which is not a valid blob reference (%v)", err)}
	}
	if !tenant {
		return nil
	}
	if owner == "" {
		return &refError{Ref: s, Reason: "which covers other clients' objects"}
	}
	same, seen := allowed[owner]
	if !seen {
		if same, err = e.sameClient(ctx, j, owner); err != nil {
			return err
		}
		allowed[owner] = same
	}
	if !same {
		return &refError{Ref: s, Reason: "which belongs to another client"}
	}
	return nil
}

// refOwner returns the job whose objects s refers to: tenant is false when
// s is no s3:// URI, or names another bucket or a key outside jobs/. A
// URI in bucket that does not parse is an error (workers might not agree
// on what it names). A prefix over every job (the whole bucket, jobs/)
// has the owner "".
func refOwner(s, bucket string) (owner string, tenant bool, err error) {
	if !blob.IsURI(s) {
		return "", false, nil
	}
	u, err := blob.ParseURI(s)
	if err != nil {
		name, _, _ := strings.Cut(strings.TrimPrefix(s, blob.Scheme+"://"), "/")
		if strings.EqualFold(name, bucket) {
			return "", false, err
		}
		return "", false, nil // another bucket: not ours to judge
	}
	if u.Bucket != bucket {
		return "", false, nil
	}
	if u.Key == "" {
		return "", true, nil
	}
	top, rest, ok := strings.Cut(u.Key, "/")
	if !ok || !strings.EqualFold(top, "jobs") {
		return "", false, nil
	}
	owner, _, _ = strings.Cut(rest, "/")
	return owner, true, nil
}

// sameClient reports whether job id exists and has j's client.
func (e *Engine) sameClient(ctx context.Context, j *store.Job, id string) (bool, error) {
	other, err := e.store.LoadJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up job %s, whose objects task params refer to: %w", id, err)
	}
	return other.Client.Name == j.Client.Name, nil
}

// refError refuses task params that refer to objects the job may not use.
// It fails the job at once, like a handler that broke the action rules
// (it matches blueprint.ErrMisuse), and nothing is dispatched.
type refError struct {
	State  string // the state that dispatched
	Task   string // the task type
	Ref    string // the refused reference
	Reason string // why, after the reference
}

func (e *refError) Error() string {
	return fmt.Sprintf("state %q: task %q params reference %s %s", e.State, e.Task, e.Ref, e.Reason)
}

// Is makes a refError match blueprint.ErrMisuse.
func (e *refError) Is(target error) bool { return target == blueprint.ErrMisuse }

// walkStrings calls yield with every string in a JSON-shaped value (map
// keys excepted) until it returns false, and reports whether it went
// through. Values of other types are walked as their JSON encoding.
func walkStrings(v any, yield func(string) bool) bool {
	switch x := v.(type) {
	case nil, bool, float64, int, int64, json.Number:
		return true
	case string:
		return yield(x)
	case map[string]any:
		for _, e := range x {
			if !walkStrings(e, yield) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !walkStrings(e, yield) {
				return false
			}
		}
	case []string:
		for _, e := range x {
			if !yield(e) {
				return false
			}
		}
	case map[string]string:
		for _, e := range x {
			if !yield(e) {
				return false
			}
		}
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return true // not JSON: it cannot reach a worker either
		}
		doc, err := protocol.DecodeJSON(raw)
		if err != nil {
			return true
		}
		return walkStrings(doc, yield)
	}
	return true
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
	if j, err := e.store.LoadJob(ctx, res.JobID, res.TaskID); err != nil {
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
func (e *Engine) cleanBlobs(ctx context.Context, tm store.Timer) error {
	if e.cfg.Blobs == nil {
		return nil
	}
	return e.inBackground(ctx, tm, func(ctx context.Context) {
		n, err := e.cfg.Blobs.DeletePrefix(ctx, blob.JobPrefix(tm.JobID))
		if err != nil {
			// The claimed timer fires again after its visibility window.
			if ctx.Err() == nil {
				e.log.Error("delete the blob objects of an expired job; trying again later", "job_id", tm.JobID, "error", err)
			}
			return
		}
		e.log.Info("deleted the blob objects of an expired job", "job_id", tm.JobID, "objects", n)
		if err := e.store.DeleteTimers(ctx, tm.Key()); err != nil {
			e.log.Warn("delete blob clean-up timer", "job_id", tm.JobID, "error", err)
		}
	})
}
