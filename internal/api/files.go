package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Job files: objects under jobs/<job_id>/ in blob storage, uploaded and
// downloaded by the job's owner.

const (
	defaultUploadExpiry = time.Hour
	maxUploadExpiry     = 7 * 24 * time.Hour // SigV4's limit
	downloadExpiry      = time.Minute
)

// blobFile checks that blob storage is on and that name is a valid file
// name; it answers 501 or 400 itself.
func (s *Server) blobFile(w http.ResponseWriter, name string) (blob.Store, string, bool) {
	if s.opts.Blobs == nil {
		writeError(w, http.StatusNotImplemented, "S3 support is not enabled: blob storage is off (set S3_ENDPOINT_URL or BLOB_DIR)")
		return nil, "", false
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, "filename is required")
		return nil, "", false
	}
	if err := blob.ValidName(name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid filename: %v", errors.Unwrap(err))
		return nil, "", false
	}
	return s.opts.Blobs, name, true
}

// absolute resolves a relative presigned URL (the local backend's) against
// PublicURL, or the request's own scheme and host.
func (s *Server) absolute(r *http.Request, u string) string {
	if !strings.HasPrefix(u, "/") {
		return u
	}
	base := s.opts.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimRight(base, "/") + u
}

// uploadJob returns the caller's job that a file is about to be added to,
// marked as having objects; it answers the request itself when it fails.
func (s *Server) uploadJob(w http.ResponseWriter, r *http.Request, cl *auth.Client) (*store.Job, bool) {
	j, ok := s.ownJob(w, r, cl)
	if !ok {
		return nil, false
	}
	if err := s.markBlobs(r.Context(), j.ID, j.Blobs, j.Status.Terminal()); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return j, true
}

// markBlobs tells the engine the job has objects (they are deleted when its
// retention ends).
func (s *Server) markBlobs(ctx context.Context, jobID string, has bool, ended bool) error {
	if has && !ended {
		return nil
	}
	return s.eng.UseBlobs(ctx, jobID)
}

// uploadURL hands out a presigned PUT URL for a job file.
func (s *Server) uploadURL(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	q := r.URL.Query()
	st, name, ok := s.blobFile(w, q.Get("filename"))
	if !ok {
		return
	}
	// Compared in seconds: a huge number times time.Second overflows.
	secs, ok := intParam(q, "expires_in", 1, int(maxUploadExpiry/time.Second), int(defaultUploadExpiry/time.Second))
	if !ok {
		writeError(w, http.StatusBadRequest, "expires_in must be an integer number of seconds from 1 to %d", int(maxUploadExpiry/time.Second))
		return
	}
	expires := time.Duration(secs) * time.Second
	j, ok := s.uploadJob(w, r, cl)
	if !ok {
		return
	}
	key := blob.JobKey(j.ID, name)
	u, err := st.PresignPut(r.Context(), key, expires)
	if err != nil {
		s.blobFailed(w, r, "presign the upload", err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.UploadURL{URL: s.absolute(r, u), Method: http.MethodPut,
		ExpiresIn: int(expires / time.Second), S3URI: blob.NewURI(st.Bucket(), key)})
}

// uploadContent streams a request body into a job file.
func (s *Server) uploadContent(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	st, name, ok := s.blobFile(w, r.PathValue("filename"))
	if !ok {
		return
	}
	limit := s.opts.MaxUploadBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "file of %d bytes is over the upload limit of %d bytes", r.ContentLength, limit)
		return
	}
	j, ok := s.uploadJob(w, r, cl)
	if !ok {
		return
	}
	key := blob.JobKey(j.ID, name)
	done := s.idleDeadline(w, r)
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, limit)}
	info, err := st.Put(r.Context(), key, body, r.ContentLength, blob.PutOptions{ContentType: r.Header.Get("Content-Type")})
	done()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || errors.As(body.err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "file over the upload limit of %d bytes: nothing was stored", limit)
		return
	case errors.Is(body.err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "the upload paused for longer than %s (REQUEST_BODY_TIMEOUT): nothing was stored", s.bodyTimeout(r))
		return
	case errors.Is(err, blob.ErrSizeMismatch) || body.err != nil:
		writeError(w, http.StatusBadRequest, "the request body could not be read in full: nothing was stored")
		return
	case err != nil:
		s.blobFailed(w, r, "store the file", err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.FileUploaded{Status: "uploaded", S3URI: blob.NewURI(st.Bucket(), key), Size: info.Size, ETag: info.ETag})
}

// bodyReader remembers a request body's read error, which tells a client's
// fault from blob storage's.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// download redirects to a short-lived presigned GET of a job file.
func (s *Server) download(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	st, name, ok := s.blobFile(w, r.PathValue("filename"))
	if !ok {
		return
	}
	view, ok := s.ownJobView(w, r, cl)
	if !ok {
		return
	}
	key := blob.JobKey(view.ID, name)
	if _, err := st.Stat(r.Context(), key); err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			writeError(w, http.StatusNotFound, "job %s has no file %q", view.ID, name)
			return
		}
		s.blobFailed(w, r, "look up the file", err)
		return
	}
	u, err := st.PresignGet(r.Context(), key, downloadExpiry)
	if err != nil {
		s.blobFailed(w, r, "presign the download", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.absolute(r, u), http.StatusFound)
}

// blobFailed answers a blob storage failure: 503, the cause logged.
func (s *Server) blobFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	s.log.Warn("blob storage failed", append(requestAttrs(r), "op", what, "error", err)...)
	writeError(w, http.StatusServiceUnavailable, "blob storage unavailable: could not %s", what)
}

// presigned serves the local backend's presigned URLs.
func (s *Server) presigned(w http.ResponseWriter, r *http.Request) {
	if s.opts.BlobHandler == nil {
		writeError(w, http.StatusNotFound, "presigned URLs are served by the S3 server, not here")
		return
	}
	if r.Method == http.MethodPut {
		defer s.idleDeadline(w, r)()
	}
	s.opts.BlobHandler.ServeHTTP(w, r)
}

// checkS3Hash warns when a worker's S3 configuration differs from ours
// (they would not see the same objects).
func (s *Server) checkS3Hash(workerID string, caps *protocol.Capabilities) {
	if caps == nil || caps.S3ConfigHash == "" || s.opts.S3ConfigHash == "" || caps.S3ConfigHash == s.opts.S3ConfigHash {
		return
	}
	s.log.Warn(fmt.Sprintf("worker %s uses another S3 configuration (s3_config_hash %s, ours %s): files may not be shared",
		workerID, caps.S3ConfigHash, s.opts.S3ConfigHash), "worker_id", workerID)
}
