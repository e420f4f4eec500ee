package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/internal/offload"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Blob transfers around a handler (reference/worker-protocol.md §8):
//
//   - before: every s3:// string in the params (nested in objects and lists
//     too) is downloaded into the task's folder and replaced by the local
//     path; a URI ending in "/" is a prefix, downloaded as a folder. A
//     params_metadata entry for the value's JSON path (file, a.b, items[0])
//     is checked first: another size or ETag fails the task with
//     INTEGRITY_MISMATCH_ERROR before the handler runs. An entry marked
//     {"inline": true, "encoding": "json"} is a JSON value the orchestrator
//     offloaded: it is decoded and put back in place instead.
//   - after: every result value that is the path of a file or folder under
//     TaskFilesDir is uploaded to jobs/<job_id>/<name> and replaced by its
//     URI, reported in data_metadata; then result values too large for the
//     result message (OffloadThreshold) are stored as JSON objects.

// fetchInputs downloads the s3:// params of a task and rewrites its params.
func (w *Worker) fetchInputs(ctx context.Context, t *Task) error {
	if w.blobs == nil || !bytes.Contains(t.rawParams, []byte(`"`+blob.Scheme+`://`)) {
		return nil
	}
	doc, err := protocol.DecodeJSON(t.rawParams)
	if err != nil {
		return InvalidInput(fmt.Errorf("task params: %w", err))
	}
	in := &inbound{w: w, t: t, used: map[string]bool{}}
	doc, changed, err := in.walk(ctx, doc, "")
	if err != nil || !changed {
		return err
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("task params: %w", err)
	}
	t.rawParams = raw
	return nil
}

type inbound struct {
	w    *Worker
	t    *Task
	used map[string]bool // local paths already taken
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// rewriteStrings walks a JSON value and replaces each string that visit
// changes, in place in maps and slices; at is the JSON path of v.
func rewriteStrings(ctx context.Context, v any, at string, visit func(ctx context.Context, s, at string) (any, bool, error)) (any, bool, error) {
	switch x := v.(type) {
	case map[string]any:
		changed := false
		for k, e := range x {
			nv, ch, err := rewriteStrings(ctx, e, childPath(at, k), visit)
			if err != nil {
				return nil, false, err
			}
			if ch {
				x[k], changed = nv, true
			}
		}
		return x, changed, nil
	case []any:
		changed := false
		for i, e := range x {
			nv, ch, err := rewriteStrings(ctx, e, at+"["+strconv.Itoa(i)+"]", visit)
			if err != nil {
				return nil, false, err
			}
			if ch {
				x[i], changed = nv, true
			}
		}
		return x, changed, nil
	case string:
		return visit(ctx, x, at)
	}
	return v, false, nil
}

// walk replaces the s3:// values in v by what fetch makes of them.
func (in *inbound) walk(ctx context.Context, v any, at string) (any, bool, error) {
	return rewriteStrings(ctx, v, at, func(ctx context.Context, s, at string) (any, bool, error) {
		if !blob.IsURI(s) {
			return s, false, nil
		}
		nv, err := in.fetch(ctx, s, at)
		if err != nil {
			return nil, false, err
		}
		return nv, true, nil
	})
}

// fetch resolves one s3:// value at JSON path at.
func (in *inbound) fetch(ctx context.Context, raw, at string) (any, error) {
	where := "params." + at
	u, err := blob.ParseURI(raw)
	if err != nil {
		return nil, InvalidInput(fmt.Errorf("%s: %w", where, err))
	}
	st, err := blob.For(in.w.blobs, u.Bucket)
	if err != nil {
		return nil, InvalidInput(fmt.Errorf("%s: %w", where, err))
	}
	md, hasMD := in.t.p.ParamsMetadata[at]
	if hasMD && md.URI != raw {
		hasMD = false // describes another value
	}
	if u.IsPrefix() {
		if u.Key == "" {
			return nil, InvalidInput(fmt.Errorf("%s: %s names a whole bucket", where, raw))
		}
		return in.fetchPrefix(ctx, st, u, where)
	}
	rc, info, err := st.Get(ctx, u.Key)
	if err != nil {
		return nil, downloadError(where, raw, err)
	}
	defer rc.Close()
	if hasMD {
		if err := checkIntegrity(md, info); err != nil {
			return nil, IntegrityMismatch(fmt.Errorf("%s (%s): %w", where, raw, err))
		}
	}
	if hasMD && offload.IsInlineJSON(md) {
		buf, err := io.ReadAll(io.LimitReader(rc, info.Size+1))
		if err == nil && int64(len(buf)) != info.Size {
			err = fmt.Errorf("read %d of %d bytes", len(buf), info.Size)
		}
		if err != nil {
			return nil, downloadError(where, raw, err)
		}
		v, err := protocol.DecodeJSON(buf)
		if err != nil {
			return nil, IntegrityMismatch(fmt.Errorf("%s (%s): the offloaded value is not JSON: %w", where, raw, err))
		}
		// An offloaded value may itself refer to objects.
		nv, _, err := in.walk(ctx, v, at)
		return nv, err
	}
	dst := in.target(path.Base(u.Key))
	if err := writeFile(dst, rc, info.Size); err != nil {
		return nil, downloadError(where, raw, err)
	}
	return dst, nil
}

// fetchPrefix downloads every object under a prefix into a folder named
// after the prefix's last segment.
func (in *inbound) fetchPrefix(ctx context.Context, st blob.Store, u blob.URI, where string) (any, error) {
	infos, err := st.List(ctx, u.Key)
	if err != nil {
		return nil, downloadError(where, u.String(), err)
	}
	dir := in.target(path.Base(strings.TrimSuffix(u.Key, "/")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	for _, info := range infos {
		rel := strings.TrimPrefix(info.Key, u.Key)
		if blob.ValidKey(rel) != nil {
			continue
		}
		rc, got, err := st.Get(ctx, info.Key)
		if err != nil {
			return nil, downloadError(where, blob.NewURI(u.Bucket, info.Key), err)
		}
		err = writeFile(filepath.Join(dir, filepath.FromSlash(rel)), rc, got.Size)
		rc.Close()
		if err != nil {
			return nil, downloadError(where, blob.NewURI(u.Bucket, info.Key), err)
		}
	}
	return dir, nil
}

// target is a free local path for a downloaded file or folder: the task's
// folder plus name, or a numbered subfolder when name is taken.
func (in *inbound) target(name string) string {
	in.t.dirUsed.Store(true)
	for i := 1; ; i++ {
		p := filepath.Join(in.t.dir, name)
		if i > 1 {
			p = filepath.Join(in.t.dir, strconv.Itoa(i), name)
		}
		if !in.used[p] {
			in.used[p] = true
			return p
		}
	}
}

func writeFile(dst string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("received %d of %d bytes", n, size)
	}
	return err
}

func checkIntegrity(md protocol.FileMetadata, info blob.Info) error {
	if md.Size == 0 && md.ETag == "" {
		return nil // nothing to compare
	}
	if md.Size != info.Size {
		return fmt.Errorf("the object has %d bytes, params_metadata says %d", info.Size, md.Size)
	}
	if want := strings.Trim(md.ETag, `"`); want != "" && want != info.ETag {
		return fmt.Errorf("the object's ETag is %s, params_metadata says %s", info.ETag, want)
	}
	return nil
}

func downloadError(where, uri string, err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		return InvalidInput(fmt.Errorf("%s: %s: object not found", where, uri))
	}
	if errors.Is(err, blob.ErrInvalidKey) {
		return InvalidInput(fmt.Errorf("%s: %w", where, err))
	}
	return Transient(fmt.Errorf("download %s (%s): %w", where, uri, err))
}

// storeOutputs uploads the files a result refers to and offloads large
// result values; res.Data and res.DataMetadata are rewritten.
func (w *Worker) storeOutputs(ctx context.Context, t *Task, res *protocol.TaskResult) error {
	if w.blobs == nil || len(res.Data) == 0 {
		return nil
	}
	doc, err := jsonDoc(res.Data)
	if err != nil {
		return nil // checkJSON reports it
	}
	data, _ := doc.(map[string]any)
	out := &outbound{w: w, t: t, md: map[string]protocol.FileMetadata{}, keys: map[string]string{}}
	changed := false
	for k, v := range data {
		nv, ch, err := out.walk(ctx, v, k)
		if err != nil {
			return err
		}
		if ch {
			data[k], changed = nv, true
		}
	}
	moved, err := offload.Values(ctx, w.blobs, data, w.cfg.OffloadThreshold, func(name string) string {
		return blob.JobPrefix(t.JobID()) + "results/" + t.ID() + "/" + offload.ObjectName(name)
	})
	if err != nil {
		return Transient(fmt.Errorf("store the large values of the result: %w", err))
	}
	for k, md := range moved {
		out.md[k] = md
		changed = true
	}
	if !changed {
		return nil
	}
	res.Data = data
	if res.DataMetadata == nil {
		res.DataMetadata = map[string]protocol.FileMetadata{}
	}
	for k, md := range out.md {
		res.DataMetadata[k] = md
	}
	return nil
}

type outbound struct {
	w    *Worker
	t    *Task
	md   map[string]protocol.FileMetadata // data_metadata by JSON path
	keys map[string]string                // object key → local path uploaded there
}

// walk uploads the local files that v names and puts their URIs in place.
func (out *outbound) walk(ctx context.Context, v any, at string) (any, bool, error) {
	return rewriteStrings(ctx, v, at, func(ctx context.Context, s, at string) (any, bool, error) {
		p, ok := out.w.localFile(s)
		if !ok {
			return s, false, nil
		}
		md, err := out.upload(ctx, p)
		if err != nil {
			return nil, false, err
		}
		out.md[at] = md
		return md.URI, true, nil
	})
}

// localFile reports whether s is the path of an existing file or folder
// under TaskFilesDir (symbolic links resolved), and returns it cleaned.
func (w *Worker) localFile(s string) (string, bool) {
	if !filepath.IsAbs(s) {
		return "", false
	}
	root := w.cfg.TaskFilesDir
	p := filepath.Clean(s)
	if !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", false
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", false
	}
	if realRoot, err := filepath.EvalSymlinks(root); err != nil || !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return "", false
	}
	return p, true
}

// upload stores a returned file (or folder) under jobs/<job_id>/.
func (out *outbound) upload(ctx context.Context, p string) (protocol.FileMetadata, error) {
	st, err := os.Stat(p)
	if err != nil {
		return protocol.FileMetadata{}, Transient(fmt.Errorf("result file %s: %w", p, err))
	}
	prefix := blob.JobPrefix(out.t.JobID())
	name := filepath.Base(p)
	if !st.IsDir() {
		info, err := out.put(ctx, prefix+name, p)
		if err != nil {
			return protocol.FileMetadata{}, err
		}
		return protocol.FileMetadata{URI: blob.NewURI(out.w.blobs.Bucket(), info.Key), Size: info.Size, ETag: info.ETag}, nil
	}
	var total int64
	err = filepath.WalkDir(p, func(fp string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(p, fp)
		if err != nil {
			return err
		}
		info, err := out.put(ctx, prefix+name+"/"+filepath.ToSlash(rel), fp)
		total += info.Size
		return err
	})
	if err != nil {
		var te *TaskError
		if errors.As(err, &te) {
			return protocol.FileMetadata{}, err
		}
		return protocol.FileMetadata{}, Transient(fmt.Errorf("result folder %s: %w", p, err))
	}
	return protocol.FileMetadata{URI: blob.NewURI(out.w.blobs.Bucket(), prefix+name+"/"), Size: total}, nil
}

func (out *outbound) put(ctx context.Context, key, p string) (blob.Info, error) {
	if prev, dup := out.keys[key]; dup && prev != p {
		return blob.Info{}, Permanent(fmt.Errorf("result files %s and %s would both be stored as %s", prev, p, key))
	}
	out.keys[key] = p
	if err := blob.ValidKey(key); err != nil {
		return blob.Info{}, Permanent(fmt.Errorf("result file %s: %w", p, err))
	}
	f, err := os.Open(p)
	if err != nil {
		return blob.Info{}, Transient(fmt.Errorf("result file %s: %w", p, err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return blob.Info{}, Transient(fmt.Errorf("result file %s: %w", p, err))
	}
	info, err := out.w.blobs.Put(ctx, key, f, st.Size(), blob.PutOptions{})
	if err != nil {
		return blob.Info{}, Transient(fmt.Errorf("upload result file %s to %s: %w", filepath.Base(p), blob.NewURI(out.w.blobs.Bucket(), key), err))
	}
	return info, nil
}
