package local

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
)

// Query parameters of a presigned URL.
const (
	qMethod    = "X-Avto-Method"
	qExpires   = "X-Avto-Expires"
	qSignature = "X-Avto-Signature"
	qNonce     = "X-Avto-Nonce" // upload URLs: makes each one unique, so that it can be spent
)

// MaxPresignExpiry is the longest validity of a presigned URL (7 days, as
// in S3).
const MaxPresignExpiry = 7 * 24 * time.Hour

// PresignPut implements blob.Store: a URL of Handler that accepts one PUT.
// The first PUT whose signature checks out spends the URL, whether or not
// the upload then succeeds; later ones get 403 (see SpendWith).
func (s *Store) PresignPut(ctx context.Context, key string, expires time.Duration) (string, error) {
	return s.presign(http.MethodPut, key, expires)
}

// PresignGet implements blob.Store: a URL of Handler that serves the object.
func (s *Store) PresignGet(ctx context.Context, key string, expires time.Duration) (string, error) {
	return s.presign(http.MethodGet, key, expires)
}

func (s *Store) presign(method, key string, expires time.Duration) (string, error) {
	if err := blob.ValidKey(key); err != nil {
		return "", err
	}
	if expires <= 0 || expires > MaxPresignExpiry {
		return "", fmt.Errorf("presign %s: expiry %s is not between 1s and %s", key, expires, MaxPresignExpiry)
	}
	exp := strconv.FormatInt(time.Now().Add(expires).Unix(), 10)
	q := url.Values{}
	q.Set(qMethod, method)
	q.Set(qExpires, exp)
	nonce := ""
	if method == http.MethodPut {
		// Two upload URLs of one key in one second would otherwise be the
		// same URL, spent together.
		nonce = rand.Text()
		q.Set(qNonce, nonce)
	}
	q.Set(qSignature, s.sign(method, s.bucket, key, exp, nonce))
	var p strings.Builder
	p.WriteString(s.opts.Route + "/" + url.PathEscape(s.bucket))
	for seg := range strings.SplitSeq(key, "/") {
		p.WriteString("/" + url.PathEscape(seg))
	}
	return s.opts.BaseURL + p.String() + "?" + q.Encode(), nil
}

// sign is the URL's HMAC; the nonce, when there is one, is signed too (and
// URLs made without one still verify).
func (s *Store) sign(method, bucket, key, expires, nonce string) string {
	m := hmac.New(sha256.New, s.opts.SigningKey)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", method, bucket, key, expires)
	if nonce != "" {
		fmt.Fprintf(m, "\n%s", nonce)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Handler serves presigned URLs: GET (and HEAD) downloads, PUT uploads. It
// expects the paths under Options.Route. Refusals are JSON {"error": ...}:
// 403 for a bad or expired signature, 404 for a missing object, 413 for an
// upload over MaxUploadBytes.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, key, ok := s.parsePath(r.URL.Path)
		if !ok {
			writeError(w, http.StatusNotFound, "no such object URL")
			return
		}
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		if method != http.MethodGet && method != http.MethodPut {
			w.Header().Set("Allow", "GET, HEAD, PUT")
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
			return
		}
		q := r.URL.Query()
		if err := s.verify(method, bucket, key, q); err != nil {
			writeError(w, http.StatusForbidden, "%v", err)
			return
		}
		if method == http.MethodPut {
			if limit := s.opts.MaxUploadBytes; limit > 0 && r.ContentLength > limit {
				// Refused before the URL is spent: nothing was sent yet.
				writeError(w, http.StatusRequestEntityTooLarge, "upload of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
				return
			}
			first, err := s.spend(r.Context(), q)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "could not record the use of this upload URL, try again: %v", err)
				return
			}
			if !first {
				writeError(w, http.StatusForbidden, "this upload URL has already been used: ask for a new one")
				return
			}
		}
		st, err := blob.For(s, bucket)
		if err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return
		}
		if method == http.MethodGet {
			s.serveGet(w, r, st, key)
			return
		}
		s.servePut(w, r, st, key)
	})
}

func (s *Store) parsePath(p string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(p, s.opts.Route+"/")
	if !ok {
		return "", "", false
	}
	bucket, key, ok = strings.Cut(rest, "/")
	if !ok || blob.ValidBucket(bucket) != nil || blob.ValidKey(key) != nil {
		return "", "", false
	}
	return bucket, key, true
}

func (s *Store) verify(method, bucket, key string, q url.Values) error {
	if q.Get(qMethod) != method {
		return fmt.Errorf("this URL is signed for %s, not %s", q.Get(qMethod), method)
	}
	exp := q.Get(qExpires)
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return errors.New("missing or malformed expiry")
	}
	want := s.sign(method, bucket, key, exp, q.Get(qNonce))
	if !hmac.Equal([]byte(want), []byte(q.Get(qSignature))) {
		return errors.New("signature does not match")
	}
	if time.Now().Unix() > sec {
		return errors.New("the URL has expired")
	}
	return nil
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, st blob.Store, key string) {
	rc, info, err := st.Get(r.Context(), key)
	if errors.Is(err, blob.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such object")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read object: %v", err)
		return
	}
	defer rc.Close()
	w.Header().Set("ETag", `"`+info.ETag+`"`)
	w.Header().Set("Content-Type", info.ContentType)
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", info.LastModified, rs)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	_, _ = io.Copy(w, rc)
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, st blob.Store, key string) {
	limit := s.opts.MaxUploadBytes // a Content-Length over it was refused before
	body := io.Reader(r.Body)
	if limit > 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	ct := r.Header.Get("Content-Type")
	info, err := st.Put(r.Context(), key, body, r.ContentLength, blob.PutOptions{ContentType: ct})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "upload over the limit of %d bytes", limit)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "upload failed, nothing was stored: %v", err)
		return
	}
	w.Header().Set("ETag", `"`+info.ETag+`"`)
	w.WriteHeader(http.StatusOK)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}
