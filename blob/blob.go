// Package blob is object storage for payloads and files: one interface with
// two backends, S3 (package blob/s3, any S3-compatible server such as MinIO)
// and a local folder (package blob/local, for the embedded default). The
// orchestrator offloads large task params and results to it, API clients
// upload and download job files through it, and the worker SDK fetches
// s3:// params and uploads result files with it.
//
// Objects are named by a key inside the store's bucket and referred to
// across processes by URI: s3://<bucket>/<key>. A job's objects live under
// JobPrefix(jobID), "jobs/<job_id>/".
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Scheme is the URI scheme of blob references.
const Scheme = "s3"

// DefaultBucket is the bucket used when none is configured
// (S3_DEFAULT_BUCKET).
const DefaultBucket = "avtomatika-payloads"

// Errors of the stores, matched with errors.Is.
var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("blob: object not found")
	// ErrInvalidKey: the key or name is not allowed.
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrSizeMismatch: the reader of a Put delivered another number of
	// bytes than the size given.
	ErrSizeMismatch = errors.New("blob: size mismatch")
)

// Info describes a stored object.
type Info struct {
	Key          string
	Size         int64
	ETag         string // without quotes
	ContentType  string
	LastModified time.Time
}

// PutOptions are optional attributes of a new object.
type PutOptions struct {
	ContentType string
}

// Store is a bucket of objects. Implementations are safe for concurrent use.
// Every call takes a context; errors name the operation and the key.
type Store interface {
	// Bucket is the name the store's objects carry in s3:// URIs.
	Bucket() string
	// Put stores the bytes of r under key. size is the number of bytes r
	// delivers, or -1 when unknown. The object becomes visible only once
	// it is complete: a failed or short Put leaves no object (nor changes
	// an existing one).
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Info, error)
	// Get opens an object for reading; the caller closes it. Its Info is
	// known before the body is read.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes an object.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object whose key starts with prefix (which
	// must not be empty) and returns how many it removed.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// PresignPut returns a URL that lets anyone holding it upload the
	// object with a plain HTTP PUT until it expires.
	PresignPut(ctx context.Context, key string, expires time.Duration) (string, error)
	// PresignGet returns a URL that lets anyone holding it download the
	// object with a plain HTTP GET until it expires.
	PresignGet(ctx context.Context, key string, expires time.Duration) (string, error)
	// Close releases the store's resources.
	Close() error
}

// MultiBucket is implemented by stores that can reach other buckets with
// the same credentials (s3:// URIs may name any bucket).
type MultiBucket interface {
	InBucket(name string) (Store, error)
}

// For returns the store for a URI's bucket: s itself, or, when the bucket
// differs and s can reach other buckets, a store for that bucket.
func For(s Store, bucket string) (Store, error) {
	if bucket == s.Bucket() {
		return s, nil
	}
	if mb, ok := s.(MultiBucket); ok {
		return mb.InBucket(bucket)
	}
	return nil, fmt.Errorf("blob: bucket %q is not reachable from the configured bucket %q", bucket, s.Bucket())
}

// ConfigHasher is implemented by stores that can identify their
// configuration for capabilities.s3_config_hash.
type ConfigHasher interface {
	ConfigHash() string
}

// ConfigHash returns s's configuration hash, or "" when it has none.
func ConfigHash(s Store) string {
	if h, ok := s.(ConfigHasher); ok {
		return h.ConfigHash()
	}
	return ""
}

// JobPrefix is the key prefix of a job's objects.
func JobPrefix(jobID string) string { return "jobs/" + jobID + "/" }

// JobKey is the key of a job's file: JobPrefix(jobID) + name.
func JobKey(jobID, name string) string { return JobPrefix(jobID) + name }

// URI is a parsed s3://bucket/key reference. A key ending in "/" names a
// prefix (a "directory" of objects).
type URI struct {
	Bucket string
	Key    string
}

// String renders the URI as s3://bucket/key.
func (u URI) String() string { return Scheme + "://" + u.Bucket + "/" + u.Key }

// IsPrefix reports whether the URI names a prefix rather than one object.
func (u URI) IsPrefix() bool { return u.Key == "" || strings.HasSuffix(u.Key, "/") }

// NewURI returns the URI of key in bucket.
func NewURI(bucket, key string) string { return URI{Bucket: bucket, Key: key}.String() }

// IsURI reports whether s looks like a blob reference (starts with s3://).
// ParseURI says whether it is a valid one.
func IsURI(s string) bool { return strings.HasPrefix(s, Scheme+"://") }

// ParseURI parses s3://bucket/key. The bucket must be a valid bucket name
// and the key, when not empty, a valid key or prefix.
func ParseURI(s string) (URI, error) {
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return URI{}, fmt.Errorf("%w: %q is not an s3:// URI", ErrInvalidKey, s)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if err := ValidBucket(bucket); err != nil {
		return URI{}, err
	}
	if key != "" {
		if err := ValidKey(strings.TrimSuffix(key, "/")); err != nil {
			return URI{}, err
		}
	}
	return URI{Bucket: bucket, Key: key}, nil
}

// ValidBucket checks an S3 bucket name: 3 to 63 characters, lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit.
func ValidBucket(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%w: bucket name %q must have 3 to 63 characters", ErrInvalidKey, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && ((c != '.' && c != '-') || i == 0 || i == len(name)-1) {
			return fmt.Errorf("%w: bucket name %q: only lower-case letters, digits, '.' and '-' (not at the ends)", ErrInvalidKey, name)
		}
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf("%w: bucket name %q contains \"..\"", ErrInvalidKey, name)
	}
	return nil
}

// MaxKeyLen is the longest key allowed (as in S3).
const MaxKeyLen = 1024

// ValidKey checks an object key: valid UTF-8 of at most MaxKeyLen bytes,
// "/"-separated segments that are neither empty, "." nor "..", and no
// control characters or backslashes. Such keys are safe as relative file
// paths on every backend.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key must have 1 to %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("%w: key %q: %v", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// MaxNameLen is the longest file name allowed.
const MaxNameLen = 255

// ValidName checks a file name: one key segment (no "/"), at most
// MaxNameLen bytes, not "." or "..", no control characters or backslashes,
// valid UTF-8.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: file name must have 1 to %d bytes", ErrInvalidKey, MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: file name is not valid UTF-8", ErrInvalidKey)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: file name %q contains '/'", ErrInvalidKey, name)
	}
	if err := checkSegment(name); err != nil {
		return fmt.Errorf("%w: file name %q: %v", ErrInvalidKey, name, err)
	}
	return nil
}

func checkSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty path segment")
	case ".", "..":
		return fmt.Errorf("segment %q is not allowed", seg)
	}
	for _, r := range seg {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errors.New("control character")
		}
		if r == '\\' {
			return errors.New("backslash")
		}
	}
	return nil
}

// CheckPrefix checks a prefix given to List or DeletePrefix: a valid key,
// optionally followed by "/".
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%w: empty prefix", ErrInvalidKey)
	}
	return ValidKey(strings.TrimSuffix(prefix, "/"))
}
