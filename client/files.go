package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Job files live in the orchestrator's blob storage (S3, or a local folder)
// under jobs/<job_id>/<filename>, readable and writable by the job's owner
// only. A file's s3:// URI goes into task params; workers of the Go SDK get
// a local copy, and files they return come back as s3:// URIs in
// state_history, downloadable here.

// UploadURL asks for a presigned URL through which the file can be
// uploaded with one plain HTTP PUT (no token) until it expires; expires 0
// means the server's default (1 hour). UploadPresigned performs the PUT.
func (c *Client) UploadURL(ctx context.Context, jobID, filename string, expires time.Duration) (protocol.UploadURL, error) {
	op := "upload URL for " + strconv.Quote(filename)
	path, err := c.filePath(jobID, "upload", "")
	if err != nil {
		return protocol.UploadURL{}, wrap(op, err)
	}
	if filename == "" {
		return protocol.UploadURL{}, wrap(op, fmt.Errorf("%w: empty file name", ErrInvalid))
	}
	q := url.Values{"filename": {filename}}
	if expires > 0 {
		q.Set("expires_in", strconv.Itoa(int(max(expires/time.Second, 1))))
	}
	var out protocol.UploadURL
	if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, &out); err != nil {
		return out, wrap(op, err)
	}
	return out, nil
}

// UploadPresigned PUTs the bytes of r to a URL from UploadURL with c's HTTP
// client and no client token. size is r's length, or -1 when unknown
// (S3 requires a known length).
func (c *Client) UploadPresigned(ctx context.Context, u protocol.UploadURL, r io.Reader, size int64) error {
	if u.URL == "" {
		return wrap("presigned upload", fmt.Errorf("%w: no URL", ErrInvalid))
	}
	if size == 0 {
		r = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.URL, r)
	if err != nil {
		return wrap("presigned upload", err)
	}
	req.ContentLength = size
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return wrap("presigned upload", err)
	}
	defer closeBody(resp.Body)
	if resp.StatusCode/100 != 2 {
		return wrap("presigned upload", errorFromResponse(resp))
	}
	return nil
}

// UploadFile streams r to the job's file through the orchestrator (PUT
// .../files/content/{filename}). size is r's length, or -1 when unknown.
// The file replaces one of the same name, and appears only once complete.
func (c *Client) UploadFile(ctx context.Context, jobID, filename string, r io.Reader, size int64) (protocol.FileUploaded, error) {
	op := "upload " + strconv.Quote(filename)
	path, err := c.filePath(jobID, "content", filename)
	if err != nil {
		return protocol.FileUploaded{}, wrap(op, err)
	}
	if r == nil {
		return protocol.FileUploaded{}, wrap(op, fmt.Errorf("%w: nil reader", ErrInvalid))
	}
	var out protocol.FileUploaded
	if err := c.call(ctx, request{method: http.MethodPut, path: path, raw: r, rawSize: size}, &out); err != nil {
		return out, wrap(op, err)
	}
	return out, nil
}

// DownloadFile opens a job file: the orchestrator redirects to a
// short-lived presigned URL, which is followed without the client token.
// The caller closes the returned body.
func (c *Client) DownloadFile(ctx context.Context, jobID, filename string) (io.ReadCloser, error) {
	op := "download " + strconv.Quote(filename)
	path, err := c.filePath(jobID, "download", filename)
	if err != nil {
		return nil, wrap(op, err)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, accept: "*/*"})
	if err != nil {
		return nil, wrap(op, err)
	}
	return resp.Body, nil
}

// filePath builds /api/{version}/jobs/{id}/files/{kind}[/{filename}].
func (c *Client) filePath(jobID, kind, filename string) (string, error) {
	id, err := segment("job id", jobID)
	if err != nil {
		return "", err
	}
	p := "/jobs/" + id + "/files/" + kind
	if kind != "upload" {
		name, err := segment("file name", filename)
		if err != nil {
			return "", err
		}
		p += "/" + name
	}
	return c.apiPath(p), nil
}
