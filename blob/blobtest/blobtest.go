// Package blobtest is the conformance suite of blob.Store: every backend
// runs the same tests, so that code written against one behaves the same
// on the other.
package blobtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
)

// Run runs the suite. newStore returns an empty store for one test (and
// cleans it up with t.Cleanup). Presigned URLs are used with a plain
// net/http client.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGetStat", testPutGetStat},
		{"UnknownSize", testUnknownSize},
		{"Multipart", testMultipart},
		{"Overwrite", testOverwrite},
		{"FailedPutLeavesNothing", testFailedPut},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"ListAndDeletePrefix", testListDelete},
		{"PresignedPutAndGet", testPresigned},
		{"PresignedRefusals", testPresignedRefusals},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) blob.Info {
	t.Helper()
	info, err := s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func mustRead(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

func testPutGetStat(t *testing.T, s blob.Store) {
	c := ctx(t)
	data := randomBytes(100_000, 1)
	info, err := s.Put(c, "jobs/j1/input.bin", bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "application/x-test"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.ETag != md5hex(data) || info.Key != "jobs/j1/input.bin" {
		t.Fatalf("put info %+v; want size %d etag %s", info, len(data), md5hex(data))
	}
	st, err := s.Stat(c, "jobs/j1/input.bin")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != info.Size || st.ETag != info.ETag || st.ContentType != "application/x-test" || st.LastModified.IsZero() {
		t.Fatalf("stat %+v, put %+v", st, info)
	}
	got, gi := mustRead(t, s, "jobs/j1/input.bin")
	if !bytes.Equal(got, data) || gi.ETag != info.ETag || gi.Size != info.Size {
		t.Fatalf("get: %d bytes, info %+v", len(got), gi)
	}
	// An empty object is an object.
	mustPut(t, s, "jobs/j1/empty", nil)
	if st, err := s.Stat(c, "jobs/j1/empty"); err != nil || st.Size != 0 || st.ETag != md5hex(nil) {
		t.Fatalf("empty object: %+v %v", st, err)
	}
	// Unicode and spaces in keys.
	mustPut(t, s, "jobs/j1/отчёт final (1).txt", []byte("ok"))
	if b, _ := mustRead(t, s, "jobs/j1/отчёт final (1).txt"); string(b) != "ok" {
		t.Fatalf("unicode key: %q", b)
	}
}

func testUnknownSize(t *testing.T, s blob.Store) {
	data := randomBytes(300_000, 2)
	info, err := s.Put(ctx(t), "u/stream", io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])), -1, blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("size %d", info.Size)
	}
	if got, _ := mustRead(t, s, "u/stream"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

// testMultipart stores objects above the S3 part size, of known and unknown
// length.
func testMultipart(t *testing.T, s blob.Store) {
	if testing.Short() {
		t.Skip("large objects")
	}
	data := randomBytes(17<<20+123, 3)
	for _, size := range []int64{int64(len(data)), -1} {
		key := fmt.Sprintf("big/%d", size)
		info, err := s.Put(ctx(t), key, bytes.NewReader(data), size, blob.PutOptions{})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, gi := mustRead(t, s, key)
		if !bytes.Equal(got, data) || gi.ETag != info.ETag || gi.Size != int64(len(data)) {
			t.Fatalf("size %d: got %d bytes, info %+v vs %+v", size, len(got), gi, info)
		}
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	mustPut(t, s, "o/k", []byte("first"))
	info := mustPut(t, s, "o/k", []byte("second, longer"))
	got, gi := mustRead(t, s, "o/k")
	if string(got) != "second, longer" || gi.ETag != info.ETag || gi.ETag != md5hex(got) {
		t.Fatalf("%q %+v", got, gi)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testFailedPut(t *testing.T, s blob.Store) {
	c := ctx(t)
	// A reader that breaks, a reader shorter than announced, one longer.
	boom := errors.New("connection reset by client")
	if _, err := s.Put(c, "f/broken", &failingReader{data: randomBytes(50_000, 4), err: boom}, 100_000, blob.PutOptions{}); err == nil {
		t.Fatal("a put whose reader failed succeeded")
	}
	if _, err := s.Put(c, "f/broken-stream", &failingReader{data: randomBytes(50_000, 4), err: boom}, -1, blob.PutOptions{}); err == nil {
		t.Fatal("a put of unknown size whose reader failed succeeded")
	}
	if _, err := s.Put(c, "f/short", bytes.NewReader([]byte("abc")), 10, blob.PutOptions{}); err == nil {
		t.Fatal("a short put succeeded")
	}
	if _, err := s.Put(c, "f/long", bytes.NewReader([]byte("abcdefghijkl")), 3, blob.PutOptions{}); err == nil {
		t.Fatal("a put longer than its size succeeded")
	}
	// The same through readers that cannot seek (a request body, say).
	if _, err := s.Put(c, "f/short-stream", io.MultiReader(strings.NewReader("abc")), 10, blob.PutOptions{}); err == nil {
		t.Fatal("a short streamed put succeeded")
	}
	if _, err := s.Put(c, "f/long-stream", io.MultiReader(strings.NewReader("abcdefghijkl")), 3, blob.PutOptions{}); err == nil {
		t.Fatal("a streamed put longer than its size succeeded")
	}
	for _, key := range []string{"f/broken", "f/broken-stream", "f/short", "f/long", "f/short-stream", "f/long-stream"} {
		if _, err := s.Stat(c, key); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s after a failed put: %v (want not found)", key, err)
		}
	}
	// A failed overwrite keeps the old object.
	mustPut(t, s, "f/kept", []byte("old"))
	if _, err := s.Put(c, "f/kept", &failingReader{data: []byte("new"), err: boom}, 100, blob.PutOptions{}); err == nil {
		t.Fatal("failing overwrite succeeded")
	}
	if got, _ := mustRead(t, s, "f/kept"); string(got) != "old" {
		t.Fatalf("after a failed overwrite: %q", got)
	}
	// A cancelled context stops a put.
	cc, cancel := context.WithCancel(c)
	cancel()
	if _, err := s.Put(cc, "f/cancelled", bytes.NewReader([]byte("x")), 1, blob.PutOptions{}); err == nil {
		t.Fatal("a put with a cancelled context succeeded")
	}
	if _, err := s.Stat(c, "f/cancelled"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("cancelled put left %v", err)
	}
	if got, err := s.List(c, "f/"); err != nil || len(got) != 1 {
		t.Fatalf("objects after failed puts: %+v %v", got, err)
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	c := ctx(t)
	if _, err := s.Stat(c, "missing/key"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat: %v", err)
	}
	if _, _, err := s.Get(c, "missing/key"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	mustPut(t, s, "dir/file", []byte("x"))
	if _, err := s.Stat(c, "dir"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat of a prefix: %v", err)
	}
	if err := s.Delete(c, "missing/key"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if got, err := s.List(c, "missing/"); err != nil || len(got) != 0 {
		t.Fatalf("list of an empty prefix: %v %v", got, err)
	}
	if n, err := s.DeletePrefix(c, "missing/"); err != nil || n != 0 {
		t.Fatalf("delete of an empty prefix: %d %v", n, err)
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	c := ctx(t)
	for _, key := range []string{"", "/abs", "a//b", "../escape", "a/../../b", "a/./b", "trailing/", "ctl\x01", "back\\slash", strings.Repeat("k", blob.MaxKeyLen+1)} {
		if _, err := s.Put(c, key, bytes.NewReader(nil), 0, blob.PutOptions{}); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("put %q: %v", key, err)
		}
		if _, err := s.Stat(c, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("stat %q: %v", key, err)
		}
		if _, err := s.PresignGet(c, key, time.Minute); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("presign %q: %v", key, err)
		}
	}
	if _, err := s.DeletePrefix(c, ""); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("delete of the empty prefix: %v", err)
	}
}

func keys(infos []blob.Info) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Key
	}
	return out
}

func testListDelete(t *testing.T, s blob.Store) {
	c := ctx(t)
	for _, k := range []string{"jobs/a/2.txt", "jobs/a/1.txt", "jobs/a/sub/deep/x", "jobs/ab/1.txt", "jobs/b/1.txt"} {
		mustPut(t, s, k, []byte(k))
	}
	got, err := s.List(c, "jobs/a/")
	if err != nil {
		t.Fatal(err)
	}
	if want := "jobs/a/1.txt jobs/a/2.txt jobs/a/sub/deep/x"; strings.Join(keys(got), " ") != want {
		t.Fatalf("list jobs/a/: %v", keys(got))
	}
	for _, in := range got {
		if in.Size != int64(len(in.Key)) || in.ETag != md5hex([]byte(in.Key)) {
			t.Fatalf("listed info %+v", in)
		}
	}
	if got, _ := s.List(c, "jobs/a"); len(got) != 4 {
		t.Fatalf("list jobs/a (no slash) sees %v", keys(got))
	}
	n, err := s.DeletePrefix(c, "jobs/a/")
	if err != nil || n != 3 {
		t.Fatalf("delete prefix: %d %v", n, err)
	}
	if got, _ := s.List(c, "jobs/"); strings.Join(keys(got), " ") != "jobs/ab/1.txt jobs/b/1.txt" {
		t.Fatalf("after delete: %v", keys(got))
	}
	if err := s.Delete(c, "jobs/b/1.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(c, "jobs/b/1.txt"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("deleted object: %v", err)
	}
	// A key may be reused after its prefix was deleted.
	mustPut(t, s, "jobs/a/1.txt", []byte("again"))
	if b, _ := mustRead(t, s, "jobs/a/1.txt"); string(b) != "again" {
		t.Fatal("recreate after delete")
	}
}

func testPresigned(t *testing.T, s blob.Store) {
	c := ctx(t)
	data := randomBytes(250_000, 5)
	u, err := s.PresignPut(c, "p/upload.bin", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(c, http.MethodPut, u, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	if etag := strings.Trim(resp.Header.Get("ETag"), `"`); etag != md5hex(data) {
		t.Fatalf("PUT ETag %q", etag)
	}
	st, err := s.Stat(c, "p/upload.bin")
	if err != nil || st.Size != int64(len(data)) || st.ETag != md5hex(data) {
		t.Fatalf("uploaded object: %+v %v", st, err)
	}
	g, err := s.PresignGet(c, "p/upload.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(g)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || strings.Trim(resp.Header.Get("ETag"), `"`) != st.ETag {
		t.Fatalf("presigned GET: %d, %d bytes, ETag %q", resp.StatusCode, len(got), resp.Header.Get("ETag"))
	}
}

func status(t *testing.T, method, u string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func testPresignedRefusals(t *testing.T, s blob.Store) {
	c := ctx(t)
	mustPut(t, s, "r/obj", []byte("secret"))
	g, err := s.PresignGet(c, "r/obj", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A GET URL does not allow a PUT.
	if code := status(t, http.MethodPut, g, []byte("overwrite")); code != http.StatusForbidden {
		t.Errorf("PUT with a GET URL: %d", code)
	}
	// A tampered signature or another key is refused.
	tampered := strings.Replace(g, "Signature=", "Signature=0", 1)
	if code := status(t, http.MethodGet, tampered, nil); code != http.StatusForbidden {
		t.Errorf("tampered URL: %d", code)
	}
	other := strings.Replace(g, "r/obj", "r/other", 1)
	if code := status(t, http.MethodGet, other, nil); code != http.StatusForbidden {
		t.Errorf("URL of another key: %d", code)
	}
	if got, _ := mustRead(t, s, "r/obj"); string(got) != "secret" {
		t.Fatal("a refused PUT changed the object")
	}
	// A missing object is 404 through a valid URL.
	m, _ := s.PresignGet(c, "r/missing", time.Minute)
	if code := status(t, http.MethodGet, m, nil); code != http.StatusNotFound {
		t.Errorf("GET of a missing object: %d", code)
	}
	// An expired URL is refused.
	e, err := s.PresignGet(c, "r/obj", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if code := status(t, http.MethodGet, e, nil); code != http.StatusForbidden {
		t.Errorf("expired URL: %d", code)
	}
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	var wg sync.WaitGroup
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = randomBytes(20_000+i*1000, uint64(10+i))
	}
	for _, v := range versions {
		wg.Go(func() {
			if _, err := s.Put(context.Background(), "c/same", bytes.NewReader(v), int64(len(v)), blob.PutOptions{}); err != nil {
				t.Errorf("concurrent put: %v", err)
			}
		})
	}
	wg.Wait()
	got, info := mustRead(t, s, "c/same")
	found := false
	for _, v := range versions {
		if bytes.Equal(got, v) {
			found = true
		}
	}
	if !found || info.ETag != md5hex(got) || info.Size != int64(len(got)) {
		t.Fatalf("after concurrent puts: %d bytes, one of the versions: %v, info %+v", len(got), found, info)
	}
}
