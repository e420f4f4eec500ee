package blob_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/avtomatika-ai/avtomatika-go/blob"
)

func TestParseURI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		bucket string
		key    string
		prefix bool
	}{
		{"s3://avtomatika-payloads/jobs/1/in.mp4", "avtomatika-payloads", "jobs/1/in.mp4", false},
		{"s3://bucket/dir/", "bucket", "dir/", true},
		{"s3://bucket/", "bucket", "", true},
		{"s3://bucket", "bucket", "", true},
		{"s3://my.bucket-1/a b/ü.txt", "my.bucket-1", "a b/ü.txt", false},
	} {
		u, err := blob.ParseURI(tc.in)
		if err != nil || u.Bucket != tc.bucket || u.Key != tc.key || u.IsPrefix() != tc.prefix {
			t.Errorf("ParseURI(%q) = %+v, %v", tc.in, u, err)
		}
	}
	for _, bad := range []string{"", "http://b/k", "s3://", "s3:///key", "s3://B/k", "s3://ab/k", "s3://bucket/../x", "s3://bucket//x",
		"s3://bucket/a/./b", "s3://-bucket/k", "s3://bucket-/k", "s3://bu..cket/k", "s3://bucket/a\x00b", "s3://bucket/a\\b"} {
		if _, err := blob.ParseURI(bad); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ParseURI(%q) = %v; want ErrInvalidKey", bad, err)
		}
	}
	if got := blob.NewURI("b-1", blob.JobKey("j", "f.txt")); got != "s3://b-1/jobs/j/f.txt" {
		t.Fatal(got)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"report.txt", "a b.bin", "отчёт.pdf", ".hidden", "..x", strings.Repeat("n", blob.MaxNameLen)} {
		if err := blob.ValidName(ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/a", "a\\b", "a\x00", "a\nb", "a\x7f", "\xff", strings.Repeat("n", blob.MaxNameLen+1)} {
		if err := blob.ValidName(bad); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidName(%q) = %v", bad, err)
		}
	}
}

// FuzzParseURI: whatever ParseURI accepts renders back to the same string
// and has a key that is safe as a relative path.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/key", "s3://b.c-d/x/y/", "s3://bucket/../x", "s3://bucket", "s3://x/a\\b", "s3://bucket/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := blob.ParseURI(s)
		if err != nil {
			if !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("error without ErrInvalidKey: %v", err)
			}
			return
		}
		if u.String() != s && u.String() != s+"/" {
			t.Fatalf("round trip: %q → %+v → %q", s, u, u.String())
		}
		if blob.ValidBucket(u.Bucket) != nil {
			t.Fatalf("invalid bucket accepted: %q", u.Bucket)
		}
		checkSafeKey(t, strings.TrimSuffix(u.Key, "/"))
	})
}

// FuzzValidName: an accepted name is one path element that stays inside
// its folder.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"report.txt", "..", "a/b", "a\\b", "x\x00", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if blob.ValidName(name) != nil {
			return
		}
		if !utf8.ValidString(name) || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
			t.Fatalf("accepted %q", name)
		}
		if filepath.Base(filepath.Join("/root/dir", name)) != name || filepath.Dir(filepath.Join("/root/dir", name)) != "/root/dir" {
			t.Fatalf("%q escapes its folder", name)
		}
		checkSafeKey(t, blob.JobKey("job", name))
	})
}

// FuzzValidKey: an accepted key joined to a root stays under it.
func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"jobs/1/a.txt", "../x", "a//b", "a/./b", "/abs", "a/b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if blob.ValidKey(key) != nil {
			return
		}
		checkSafeKey(t, key)
	})
}

func checkSafeKey(t *testing.T, key string) {
	t.Helper()
	if key == "" {
		return
	}
	if err := blob.ValidKey(key); err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	root := "/srv/blobs"
	p := filepath.Join(root, filepath.FromSlash(key))
	if !strings.HasPrefix(p, root+"/") || filepath.ToSlash(strings.TrimPrefix(p, root+"/")) != key {
		t.Fatalf("key %q maps to %q outside or changed", key, p)
	}
}
