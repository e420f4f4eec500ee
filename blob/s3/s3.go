// Package s3 is a blob.Store on an S3-compatible server (AWS S3, MinIO,
// ...), through github.com/minio/minio-go. Presigned URLs are SigV4
// query-string URLs that any HTTP client can use.
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/avtomatika-ai/avtomatika-go/blob"
)

// Options configure a Store (blob.S3Options, which the orchestrator and
// worker configurations carry without linking this package).
type Options = blob.S3Options

// PathStyle chooses how the bucket appears in request URLs.
type PathStyle = blob.S3PathStyle

// Path styles (S3_FORCE_PATH_STYLE); see blob.S3PathAuto and the others.
const (
	PathAuto    = blob.S3PathAuto
	PathForce   = blob.S3PathForce
	PathVirtual = blob.S3PathVirtual
)

// ParsePathStyle reads an S3_FORCE_PATH_STYLE value: blob.ParseS3PathStyle.
func ParsePathStyle(v string) (style PathStyle, ok bool) { return blob.ParseS3PathStyle(v) }

// ConfigHash is capabilities.s3_config_hash: the first 16 hex characters
// of sha256("<endpoint>|<access key>|<bucket>"), or "" when one is empty.
func ConfigHash(endpoint, accessKey, bucket string) string {
	if endpoint == "" || accessKey == "" || bucket == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(endpoint + "|" + accessKey + "|" + bucket))
	return hex.EncodeToString(sum[:])[:16]
}

// Store is a bucket on an S3 server.
type Store struct {
	c      *minio.Client
	opts   Options
	bucket string
}

var _ blob.Store = (*Store)(nil)

// New returns a store; it makes no request. Call EnsureBucket to check the
// connection and create the bucket.
func New(opts Options) (*Store, error) {
	if opts.Bucket == "" {
		opts.Bucket = blob.DefaultBucket
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 3
	}
	if opts.PartSize == 0 {
		opts.PartSize = 16 << 20
	}
	if err := opts.Check(); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	host, secure, _ := opts.EndpointHost()
	lookup := minio.BucketLookupAuto
	switch opts.PathStyle {
	case PathForce:
		lookup = minio.BucketLookupPath
	case PathVirtual:
		lookup = minio.BucketLookupDNS
	}
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	c, err := minio.New(host, &minio.Options{
		Creds: credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""), Secure: secure, Region: opts.Region,
		BucketLookup: lookup, MaxRetries: opts.MaxRetries, Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return &Store{c: c, opts: opts, bucket: opts.Bucket}, nil
}

// Open is New followed by EnsureBucket.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := s.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// EnsureBucket creates the bucket if it does not exist. A server that is
// still starting ("not initialized yet") is waited for until ctx ends.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	for err != nil && minio.ToErrorResponse(err).Code == "XMinioServerNotInitialized" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("s3: check bucket %s at %s: %w (%v)", s.bucket, s.opts.Endpoint, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		ok, err = s.c.BucketExists(ctx, s.bucket)
	}
	if err != nil {
		return fmt.Errorf("s3: check bucket %s at %s: %w", s.bucket, s.opts.Endpoint, err)
	}
	if ok {
		return nil
	}
	err = s.c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.opts.Region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		err = nil // created meanwhile by another process
	}
	if err != nil {
		return fmt.Errorf("s3: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// RemoveBucket deletes every object of the bucket and the bucket itself
// (for tests and tear-downs).
func (s *Store) RemoveBucket(ctx context.Context) error {
	objs := s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true})
	for e := range s.c.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return fmt.Errorf("s3: empty bucket %s: %w", s.bucket, e.Err)
		}
	}
	if err := s.c.RemoveBucket(ctx, s.bucket); err != nil {
		return fmt.Errorf("s3: remove bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Bucket implements blob.Store.
func (s *Store) Bucket() string { return s.bucket }

// ConfigHash implements blob.ConfigHasher.
func (s *Store) ConfigHash() string { return ConfigHash(s.opts.Endpoint, s.opts.AccessKey, s.bucket) }

// InBucket returns a store for another bucket with the same client.
func (s *Store) InBucket(name string) (blob.Store, error) {
	if err := blob.ValidBucket(name); err != nil {
		return nil, err
	}
	cp := *s
	cp.bucket = name
	return &cp, nil
}

// Close implements blob.Store.
func (s *Store) Close() error { return nil }

func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchObject":
		return fmt.Errorf("s3: %s s3://%s/%s: %w", op, s.bucket, key, blob.ErrNotFound)
	}
	return fmt.Errorf("s3: %s s3://%s/%s: %w", op, s.bucket, key, err)
}

func toInfo(o minio.ObjectInfo) blob.Info {
	return blob.Info{Key: o.Key, Size: o.Size, ETag: strings.Trim(o.ETag, `"`), ContentType: o.ContentType, LastModified: o.LastModified.UTC()}
}

// Put implements blob.Store. Uploads larger than a part are multipart
// uploads, which minio-go aborts when they fail: the object appears only
// when complete.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts blob.PutOptions) (blob.Info, error) {
	if err := blob.ValidKey(key); err != nil {
		return blob.Info{}, err
	}
	po := minio.PutObjectOptions{ContentType: opts.ContentType}
	if po.ContentType == "" {
		po.ContentType = "application/octet-stream"
	}
	if size < 0 {
		po.PartSize = s.opts.PartSize
	}
	if whole, ok := seekableLength(r); ok {
		// A file or an in-memory reader at its start: minio-go may read
		// it in parallel and retry failed parts.
		if size < 0 {
			size, po.PartSize = whole, 0
		}
		if whole != size {
			return blob.Info{}, fmt.Errorf("s3: put s3://%s/%s: %w: the reader has %d bytes, expected %d", s.bucket, key, blob.ErrSizeMismatch, whole, size)
		}
		info, err := s.c.PutObject(ctx, s.bucket, key, r, size, po)
		if err != nil {
			return blob.Info{}, s.wrap("put", key, err)
		}
		return s.putInfo(key, info, po), nil
	}
	cr := &countingReader{r: r}
	info, err := s.c.PutObject(ctx, s.bucket, key, cr, size, po)
	if err != nil {
		return blob.Info{}, s.wrap("put", key, err)
	}
	if size >= 0 && (cr.n > size || hasMore(cr.r)) {
		// minio-go stopped at size bytes: the reader had more.
		_ = s.Delete(context.WithoutCancel(ctx), key)
		return blob.Info{}, fmt.Errorf("s3: put s3://%s/%s: %w: the reader has more than %d bytes", s.bucket, key, blob.ErrSizeMismatch, size)
	}
	return s.putInfo(key, info, po), nil
}

func (s *Store) putInfo(key string, info minio.UploadInfo, po minio.PutObjectOptions) blob.Info {
	return blob.Info{Key: key, Size: info.Size, ETag: strings.Trim(info.ETag, `"`), ContentType: po.ContentType,
		LastModified: info.LastModified.UTC()}
}

// seekableLength is the length of a seekable reader positioned at its
// start (files, bytes.Reader, strings.Reader); ok is false for others.
func seekableLength(r io.Reader) (int64, bool) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return 0, false
	}
	if _, isAt := r.(io.ReaderAt); !isAt {
		return 0, false
	}
	cur, err := rs.Seek(0, io.SeekCurrent)
	if err != nil || cur != 0 {
		return 0, false
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if _, serr := rs.Seek(0, io.SeekStart); err != nil || serr != nil {
		return 0, false
	}
	return end, true
}

func hasMore(r io.Reader) bool {
	var b [1]byte
	n, _ := io.ReadFull(r, b[:])
	return n > 0
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, blob.Info{}, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, blob.Info{}, s.wrap("get", key, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, blob.Info{}, s.wrap("get", key, err)
	}
	return obj, toInfo(oi), nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.ValidKey(key); err != nil {
		return blob.Info{}, err
	}
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, s.wrap("stat", key, err)
	}
	return toInfo(oi), nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	if err := blob.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	var out []blob.Info
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.wrap("list", prefix, o.Err)
		}
		out = append(out, toInfo(o))
	}
	return out, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	return s.wrap("delete", key, s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
}

// DeletePrefix implements blob.Store.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := blob.CheckPrefix(prefix); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	listed := 0
	objs := make(chan minio.ObjectInfo)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(objs)
		for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			select {
			case objs <- o:
				listed++
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for e := range s.c.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			errs = append(errs, e.Err)
		}
	}
	cancel()
	<-done // listErr and listed are final
	n := max(listed-len(errs), 0)
	if listErr != nil {
		errs = append(errs, listErr)
	}
	if err := errors.Join(errs...); err != nil {
		return n, s.wrap("delete prefix", prefix, err)
	}
	return n, nil
}

// PresignPut implements blob.Store.
func (s *Store) PresignPut(ctx context.Context, key string, expires time.Duration) (string, error) {
	if err := blob.ValidKey(key); err != nil {
		return "", err
	}
	u, err := s.c.PresignedPutObject(ctx, s.bucket, key, expires)
	if err != nil {
		return "", s.wrap("presign put", key, err)
	}
	return u.String(), nil
}

// PresignGet implements blob.Store.
func (s *Store) PresignGet(ctx context.Context, key string, expires time.Duration) (string, error) {
	if err := blob.ValidKey(key); err != nil {
		return "", err
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, key, expires, nil)
	if err != nil {
		return "", s.wrap("presign get", key, err)
	}
	return u.String(), nil
}
