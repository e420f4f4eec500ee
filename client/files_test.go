package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestFileCallsRefuseBadArguments(t *testing.T) {
	t.Parallel()
	c, err := New("http://127.0.0.1:1", "tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.UploadURL(ctx, "", "a", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty job id: %v", err)
	}
	if _, err := c.UploadURL(ctx, "j", "", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty file name: %v", err)
	}
	if _, err := c.UploadFile(ctx, "j", "..", strings.NewReader("x"), 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("file name ..: %v", err)
	}
	if _, err := c.DownloadFile(ctx, "j", "."); !errors.Is(err, ErrInvalid) {
		t.Errorf("file name .: %v", err)
	}
	if err := c.UploadPresigned(ctx, protocol.UploadURL{}, nil, 0); err == nil {
		t.Error("empty presigned URL accepted")
	}
}

// TestUploadFileStreamsTheBody: the body goes as it is, with its length
// (or chunked when unknown), and the file name is escaped as one segment.
func TestUploadFileStreamsTheBody(t *testing.T) {
	t.Parallel()
	var got struct {
		path, ctype, token string
		length             int64
		body               string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.path, got.ctype, got.token, got.length, got.body = r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("X-Client-Token"), r.ContentLength, string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"uploaded","s3_uri":"s3://b/jobs/j/a b.txt","size":5}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "tok")
	up, err := c.UploadFile(context.Background(), "j", "a b.txt", strings.NewReader("hello"), 5)
	if err != nil || up.Size != 5 || up.S3URI != "s3://b/jobs/j/a b.txt" {
		t.Fatalf("%+v %v", up, err)
	}
	if got.path != "/api/v1/jobs/j/files/content/a%20b.txt" || got.ctype != "application/octet-stream" || got.token != "tok" ||
		got.length != 5 || got.body != "hello" {
		t.Fatalf("request %+v", got)
	}
	if _, err := c.UploadFile(context.Background(), "j", "s.txt", io.MultiReader(strings.NewReader("he"), strings.NewReader("llo")), -1); err != nil {
		t.Fatal(err)
	}
	if got.length != -1 || got.body != "hello" {
		t.Fatalf("streamed request %+v", got)
	}
}
