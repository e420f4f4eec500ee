package api

import (
	"errors"
	"net/http"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// refreshBodyLimit bounds the body of a token refresh: one refresh token.
const refreshBodyLimit = 16 << 10

// noIDProbe is a worker id no worker can have (ids never hold NUL): the
// tokens that authenticate it are those valid without an id, the global
// token (and a catch-all pattern's).
const noIDProbe = "\x00"

// preAuthWorker checks a worker request's credentials from its headers and
// path alone, before its body is read, so that a stranger cannot make the
// server read and buffer a body: X-Worker-Token is required; with an id
// (the path's {worker_id} or X-Worker-ID) the token must authenticate that
// worker; without one it must be valid without an id (the global token or
// an issued access token): an individual token needs X-Worker-ID, as
// upstream's orchestrator requires. The signed body is checked afterwards
// as before. It answers the failure itself.
func (s *Server) preAuthWorker(w http.ResponseWriter, r *http.Request, pathID string) bool {
	if pathID != "" || r.Header.Get(protocol.HeaderWorkerID) != "" {
		if _, _, status, err := s.authWorker(r, pathID); err != nil {
			writeError(w, status, "%v", err)
			return false
		}
		return true
	}
	token := r.Header.Get(protocol.HeaderWorkerToken)
	if token == "" {
		writeError(w, http.StatusForbidden, "Unauthorized: Missing X-Worker-Token header")
		return false
	}
	if s.opts.Workers.Authenticate(noIDProbe, token) == nil {
		return true
	}
	_, err := s.store.GetValue(r.Context(), stsKey("access", token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusForbidden, "Unauthorized: No valid token found (an individual worker token needs the X-Worker-ID header)")
		return false
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "authentication store unavailable")
		return false
	}
	return true
}

// preAuthRefresh checks a token refresh from its headers before its body is
// read: the worker id must be given (X-Worker-ID) and have credentials
// configured (an individual or the global token).
func (s *Server) preAuthRefresh(w http.ResponseWriter, r *http.Request) bool {
	id := r.Header.Get(protocol.HeaderWorkerID)
	if id == "" {
		writeError(w, http.StatusBadRequest, "Missing worker_id identification")
		return false
	}
	if s.opts.Workers.SigningKey(id) == "" {
		writeError(w, http.StatusForbidden, "Unauthorized: Invalid refresh token (not found)")
		return false
	}
	return true
}
