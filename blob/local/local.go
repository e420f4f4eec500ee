// Package local is a blob.Store in a local folder: the embedded default when
// no S3 server is configured. Objects are files under <Dir>/<bucket>/<key>;
// a Put writes a temporary file and renames it into place, so an object is
// never seen half-written. "Presigned" URLs point at Handler, which the
// orchestrator serves under /_public/blobs: they carry an HMAC-SHA256
// signature of the method, object and expiry, so the same client flow
// (upload with a plain PUT, download with a plain GET) works without S3.
// An upload URL is single-use (unlike S3's, which work until they expire);
// download URLs work until they expire.
//
// Several processes on one machine (an orchestrator and its workers) may
// share a folder. A key cannot be both an object and a prefix of another
// object ("a" and "a/b"), which S3 allows.
package local

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
)

// DefaultRoute is where the orchestrator serves Handler.
const DefaultRoute = "/_public/blobs"

// Options configure a Store.
type Options struct {
	// Dir is the root folder; it is created when missing.
	Dir string
	// Bucket is the name objects carry in s3:// URIs (blob.DefaultBucket).
	Bucket string
	// BaseURL is the scheme://host[/path] where Handler is reachable, used
	// in presigned URLs. Empty gives relative URLs (/_public/blobs/...),
	// which the orchestrator resolves against each request.
	BaseURL string
	// Route is the path Handler is served under (DefaultRoute).
	Route string
	// SigningKey signs presigned URLs. Nil picks a random key, so URLs are
	// only valid for the process that made them; processes that share
	// URLs must share the key.
	SigningKey []byte
	// MaxUploadBytes bounds a presigned PUT (0: no limit).
	MaxUploadBytes int64
}

// Store is a folder of objects. It is safe for concurrent use, also by
// several processes.
type Store struct {
	root   string // Dir
	bucket string
	opts   Options
	spent  *spentURLs // upload URLs used
}

var _ blob.Store = (*Store)(nil)

// Open returns the store of a folder, creating it if needed.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("local blob store: no folder given")
	}
	if opts.Bucket == "" {
		opts.Bucket = blob.DefaultBucket
	}
	if err := blob.ValidBucket(opts.Bucket); err != nil {
		return nil, fmt.Errorf("local blob store: %w", err)
	}
	if opts.Route == "" {
		opts.Route = DefaultRoute
	}
	opts.Route = "/" + strings.Trim(opts.Route, "/")
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if len(opts.SigningKey) == 0 {
		opts.SigningKey = make([]byte, 32)
		if _, err := rand.Read(opts.SigningKey); err != nil {
			return nil, fmt.Errorf("local blob store: signing key: %w", err)
		}
	}
	root, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("local blob store: %w", err)
	}
	for _, d := range []string{filepath.Join(root, opts.Bucket), filepath.Join(root, tmpDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("local blob store: %w", err)
		}
	}
	return &Store{root: root, bucket: opts.Bucket, opts: opts, spent: &spentURLs{}}, nil
}

// Folders under the root besides the buckets (bucket names cannot start
// with a dot).
const (
	tmpDir  = ".tmp"
	metaDir = ".meta"
)

// Dir returns the store's root folder.
func (s *Store) Dir() string { return s.root }

// Bucket implements blob.Store.
func (s *Store) Bucket() string { return s.bucket }

// InBucket returns the store of another bucket in the same folder.
func (s *Store) InBucket(name string) (blob.Store, error) {
	if err := blob.ValidBucket(name); err != nil {
		return nil, err
	}
	o := s.opts
	o.Bucket = name
	o.Dir = s.root
	st, err := Open(o)
	if err != nil {
		return nil, err
	}
	st.spent = s.spent // one record of spent upload URLs
	return st, nil
}

// Close implements blob.Store; there is nothing to release.
func (s *Store) Close() error { return nil }

func (s *Store) dataPath(key string) string {
	return filepath.Join(s.root, s.bucket, filepath.FromSlash(key))
}

func (s *Store) metaPath(key string) string {
	return filepath.Join(s.root, metaDir, s.bucket, filepath.FromSlash(key))
}

// meta is what the store remembers of an object besides its bytes. ModNanos
// and Size tie it to the data file it describes; when they do not match
// (a writer between its two renames) the ETag is computed afresh.
type meta struct {
	ETag        string `json:"etag"`
	Size        int64  `json:"size"`
	ModNanos    int64  `json:"mod"`
	ContentType string `json:"content_type,omitempty"`
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts blob.PutOptions) (blob.Info, error) {
	if err := blob.ValidKey(key); err != nil {
		return blob.Info{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return blob.Info{}, fmt.Errorf("put %s: %w: read %d bytes, expected %d", key, blob.ErrSizeMismatch, n, size)
	}
	if err := tmp.Close(); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	st, err := os.Stat(tmp.Name())
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := renameInto(tmp.Name(), s.dataPath(key)); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	committed = true
	m := meta{ETag: hex.EncodeToString(h.Sum(nil)), Size: n, ModNanos: st.ModTime().UnixNano(), ContentType: opts.ContentType}
	// The metadata only saves hashing the file again on Stat: without it
	// (a full disk, say) the object is still complete.
	_ = s.writeMeta(key, m)
	return s.info(key, m, st.ModTime()), nil
}

func (s *Store) writeMeta(key string, m meta) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "meta-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := renameInto(tmp.Name(), s.metaPath(key)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// renameInto moves a finished temporary file to dst, creating its folder.
// A concurrent prune may remove the fresh, still empty folder before the
// rename: then it is created again.
func renameInto(tmp, dst string) error {
	var err error
	for range 3 {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			continue
		}
		if err = os.Rename(tmp, dst); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

func (s *Store) info(key string, m meta, mod time.Time) blob.Info {
	ct := m.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return blob.Info{Key: key, Size: m.Size, ETag: m.ETag, ContentType: ct, LastModified: mod.UTC()}
}

// describe returns the Info of an object whose data file is st.
func (s *Store) describe(key string, st fs.FileInfo) (blob.Info, error) {
	var m meta
	raw, err := os.ReadFile(s.metaPath(key))
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil || m.Size != st.Size() || m.ModNanos != st.ModTime().UnixNano() {
		// No or stale metadata: compute the ETag from the bytes.
		f, err := os.Open(s.dataPath(key))
		if err != nil {
			return blob.Info{}, s.notFound(key, err)
		}
		defer f.Close()
		h := md5.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return blob.Info{}, fmt.Errorf("stat %s: %w", key, err)
		}
		m = meta{ETag: hex.EncodeToString(h.Sum(nil)), Size: n, ModNanos: st.ModTime().UnixNano(), ContentType: m.ContentType}
	}
	return s.info(key, m, st.ModTime()), nil
}

func (s *Store) notFound(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errIsDir) {
		return fmt.Errorf("%s: %w", key, blob.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", key, err)
}

var errIsDir = errors.New("is a prefix, not an object")

func (s *Store) statData(key string) (fs.FileInfo, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	st, err := os.Stat(s.dataPath(key))
	if err == nil && !st.Mode().IsRegular() {
		err = errIsDir
	}
	if err != nil {
		return nil, s.notFound(key, err)
	}
	return st, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	st, err := s.statData(key)
	if err != nil {
		return blob.Info{}, err
	}
	return s.describe(key, st)
}

// Get implements blob.Store. The reader is an *os.File (it seeks).
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, blob.Info{}, err
	}
	f, err := os.Open(s.dataPath(key))
	if err != nil {
		return nil, blob.Info{}, s.notFound(key, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errIsDir
	}
	if err != nil {
		f.Close()
		return nil, blob.Info{}, s.notFound(key, err)
	}
	info, err := s.describe(key, st)
	if err != nil {
		f.Close()
		return nil, blob.Info{}, err
	}
	return f, info, nil
}

// walk calls fn for every object whose key starts with prefix.
func (s *Store) walk(prefix string, fn func(key string, d fs.DirEntry) error) error {
	if err := blob.CheckPrefix(prefix); err != nil {
		return err
	}
	bucketDir := filepath.Join(s.root, s.bucket)
	start := bucketDir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(bucketDir, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(bucketDir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		return fn(key, d)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	var out []blob.Info
	err := s.walk(prefix, func(key string, d fs.DirEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		info, err := s.describe(key, st)
		if errors.Is(err, blob.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b blob.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	err := os.Remove(s.dataPath(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	_ = os.Remove(s.metaPath(key))
	s.prune(path.Dir(key))
	return nil
}

// DeletePrefix implements blob.Store.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	var keys []string
	if err := s.walk(prefix, func(key string, _ fs.DirEntry) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("delete %s: %w", prefix, err)
	}
	n := 0
	dirs := map[string]bool{}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		err := os.Remove(s.dataPath(key))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("delete %s: %w", key, err)
		}
		if err == nil {
			n++
		}
		_ = os.Remove(s.metaPath(key))
		dirs[path.Dir(key)] = true
	}
	// Deepest first, so that emptied parents go too.
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	slices.SortFunc(list, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range list {
		s.prune(d)
	}
	return n, nil
}

// prune removes the empty folders of a key's path, deepest first.
func (s *Store) prune(dir string) {
	for dir != "." && dir != "/" && dir != "" {
		for _, base := range []string{filepath.Join(s.root, s.bucket), filepath.Join(s.root, metaDir, s.bucket)} {
			_ = os.Remove(filepath.Join(base, filepath.FromSlash(dir))) // fails unless empty
		}
		dir = path.Dir(dir)
	}
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
