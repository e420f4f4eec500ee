package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// authWorker authenticates a worker request and returns the worker id and
// the key its messages must be signed with. hint is the id the request
// claims (path, header or body). Short-lived (STS) tokens are accepted too;
// signatures are always checked against the master token.
func (s *Server) authWorker(r *http.Request, hint string) (id, key string, status int, err error) {
	header := r.Header.Get(protocol.HeaderWorkerID)
	if hint == "" {
		hint = header
	} else if header != "" && header != hint {
		return "", "", http.StatusForbidden, errors.New("Immediate sender ID mismatch")
	}
	token := r.Header.Get(protocol.HeaderWorkerToken)
	if token == "" {
		return "", "", http.StatusForbidden, errors.New("Unauthorized: Missing X-Worker-Token header")
	}
	// Master tokens are checked in memory first, so that only STS tokens
	// cost a store read.
	authErr := s.opts.Workers.Authenticate(hint, token)
	if authErr == nil {
		return hint, s.opts.Workers.SigningKey(hint), 0, nil
	}
	owner, err := s.store.GetValue(r.Context(), stsKey("access", token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", "", http.StatusForbidden, authErr
	case err != nil:
		return "", "", http.StatusServiceUnavailable, errors.New("authentication store unavailable")
	case hint != "" && hint != owner:
		return "", "", http.StatusForbidden, errors.New("Unauthorized: the token belongs to another worker")
	}
	return owner, s.opts.Workers.SigningKey(owner), 0, nil
}

// signed authenticates a worker and verifies a signed message body: a
// fresh timestamp, a matching signature made with the worker's master
// token, and a signature not seen before within the replay window (see
// replay.go for the results and heartbeats that may repeat). It answers
// the failure, and a repeated heartbeat, itself and returns the worker id
// when the message is to be processed.
func (s *Server) signed(w http.ResponseWriter, r *http.Request, body []byte, hint string, msg signedMsg) (string, func(), bool) {
	id, signature, ok := s.verified(w, r, body, hint, msg)
	if !ok {
		return "", nil, false
	}
	undo, ok := s.firstUse(w, r, signature, id, msg)
	return id, undo, ok
}

// verified authenticates a signed message and checks its signature; it
// returns the sender and the signature.
func (s *Server) verified(w http.ResponseWriter, r *http.Request, body []byte, hint string, msg signedMsg) (string, string, bool) {
	id, key, status, err := s.authWorker(r, hint)
	if err != nil {
		writeError(w, status, "%v", err)
		return "", "", false
	}
	if hint != "" && hint != id {
		writeError(w, http.StatusForbidden, "Immediate sender ID mismatch")
		return "", "", false
	}
	env, err := protocol.VerifyEnvelope(body, protocol.VerifyOptions{Key: key, WorkerID: id, Event: msg.kind == msgEvent})
	if err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return "", "", false
	}
	return id, env.Security.Signature, true
}

// firstUse records the use of a verified message's signature, and answers
// a replay itself (false). If processing fails on our side the message
// may be sent again: undo forgets the signature.
func (s *Server) firstUse(w http.ResponseWriter, r *http.Request, signature, id string, msg signedMsg) (func(), bool) {
	replayed, undo, err := s.useSignature(r.Context(), signature, id, msg)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if replayed && msg.kind == msgHeartbeat {
		writeJSON(w, http.StatusOK, protocol.HeartbeatResponse{Status: "ok"})
		return nil, false
	}
	if replayed {
		writeError(w, http.StatusConflict, "Replayed message: this signature was already used")
		return nil, false
	}
	return undo, true
}

// setVersion names in the answer the RXON version negotiated with the
// worker's X-RXON-Version (protocol.NegotiateVersion).
func setVersion(w http.ResponseWriter, r *http.Request) {
	// The header's values are set, not built: the offered one is shared
	// with the request, ours with every answer (net/http copies them out).
	offered := r.Header[protocol.HeaderVersion]
	if len(offered) > 0 {
		if v, _ := protocol.NegotiateVersion(offered[0]); v == offered[0] {
			w.Header()[protocol.HeaderVersion] = offered[:1:1]
			return
		}
	}
	w.Header()[protocol.HeaderVersion] = ourVersion
}

var ourVersion = []string{protocol.Version}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	if !s.preAuthWorker(w, r, "") {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var reg protocol.Registration
	if !decodeJSON(w, body, &reg) {
		return
	}
	if reg.WorkerID == "" {
		writeError(w, http.StatusBadRequest, "Invalid WorkerRegistration payload: worker_id is required")
		return
	}
	_, undo, ok := s.signed(w, r, body, reg.WorkerID, signedMsg{kind: msgRegistration})
	if !ok {
		return
	}
	s.checkS3Hash(reg.WorkerID, reg.Capabilities)
	if _, err := s.eng.RegisterWorker(r.Context(), reg); err != nil {
		undo()
		s.fail(w, r, err)
		return
	}
	offered := r.Header.Get(protocol.HeaderVersion)
	version, ok := protocol.NegotiateVersion(offered)
	resp := protocol.RegisterResponse{Status: "registered", Version: version}
	if !ok {
		resp.Warning = "Protocol version mismatch! Orchestrator: " + protocol.Version + " (speaks " + protocol.OldestVersion + " to " +
			protocol.Version + "), Worker: " + offered + "."
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	pathID := r.PathValue("worker_id")
	if !s.preAuthWorker(w, r, pathID) {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if b := string(trimJSONSpace(body)); b == "" || b == "null" {
		id, _, status, err := s.authWorker(r, pathID)
		if err != nil {
			writeError(w, status, "%v", err)
			return
		}
		resp, err := s.eng.Heartbeat(r.Context(), id, nil)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var hb protocol.Heartbeat
	if !decodeJSON(w, body, &hb) {
		return
	}
	id, undo, ok := s.signed(w, r, body, pathID, signedMsg{kind: msgHeartbeat})
	if !ok {
		return
	}
	if hb.WorkerID != "" && hb.WorkerID != id {
		undo() // refused, not applied: a repeat is refused alike, not acknowledged
		writeError(w, http.StatusForbidden, "Immediate sender ID mismatch")
		return
	}
	resp, err := s.eng.Heartbeat(r.Context(), id, &hb)
	if err != nil {
		undo()
		s.fail(w, r, err)
		return
	}
	resp.CancelTaskIDs = s.ws.withoutRecentCancels(id, resp.CancelTaskIDs)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) nextTask(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	id, _, status, err := s.authWorker(r, r.PathValue("worker_id"))
	if err != nil {
		writeError(w, status, "%v", err)
		return
	}
	var wait time.Duration
	if v := queryValue(r, "timeout"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 {
			writeError(w, http.StatusBadRequest, "timeout must be a non-negative number of seconds")
			return
		}
		wait = time.Duration(secs * float64(time.Second))
	}
	// Close releases the poll (204) without waiting for the engine to stop,
	// so that a graceful shutdown is not held up by long polls.
	if s.closing.Err() != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	task, err := s.eng.NextTask(ctx, id, wait)
	if err != nil && s.closing.Err() != nil && errors.Is(err, context.Canceled) {
		task, err = nil, nil
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if task == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.signTask(task); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, task)
}

// signTask signs a task for its worker when tasks are signed. It fails only
// for a payload that does not encode; the task then stays claimed and
// times out like a lost one.
func (s *Server) signTask(task *protocol.TaskPayload) error {
	if s.opts.TaskSigningKey == "" {
		return nil
	}
	return protocol.SignTask(task, s.opts.TaskSigningKey)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	if !s.preAuthWorker(w, r, "") {
		return
	}
	wantNext := false
	if v := queryValue(r, protocol.QueryNext); v != "" {
		var err error
		if wantNext, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, "%s must be true or false (1 or 0)", protocol.QueryNext)
			return
		}
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var res protocol.TaskResult
	if !decodeJSON(w, body, &res) {
		return
	}
	if res.JobID == "" || res.TaskID == "" {
		writeError(w, http.StatusBadRequest, "Invalid TaskResult payload: job_id and task_id are required")
		return
	}
	msg := signedMsg{kind: msgResult, jobID: res.JobID, taskID: res.TaskID}
	id, signature, ok := s.verified(w, r, body, res.WorkerID, msg)
	if !ok {
		return
	}
	release := func() {}
	if wantNext {
		// Until it has asked, the worker's polls leave it the task it
		// will take (see engine.AskingFor).
		release = s.eng.AskingFor(id)
		defer release()
	}
	// The signature's first use is recorded with the result's commit. One
	// used before is decided as other messages' are (see useSignature): a
	// replay, or a retry's result with the bytes of an earlier attempt's.
	key := replayKey(signature)
	resp, err := s.eng.SubmitResultOnce(r.Context(), id, res, &store.Once{Key: key, Value: "1", TTL: replayTTL})
	switch {
	case errors.Is(err, store.ErrOnceTaken):
		undo, ok := s.firstUse(w, r, signature, id, msg)
		if !ok {
			return
		}
		if resp, err = s.eng.SubmitResult(r.Context(), id, res); err != nil {
			undo()
		}
	case err != nil:
		// The commit may have happened: forget the signature, so that the
		// worker's retry is answered as ignored, not refused as a replay.
		_ = s.store.DeleteValue(context.WithoutCancel(r.Context()), key)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if wantNext {
		resp.NextTask = s.nextWithResult(r, id)
		release()
	}
	writeJSON(w, http.StatusOK, resp)
}

// nextWithResult picks up the worker's next task, if one waits, for the
// answer to its result. The result is committed by now, so a failure here
// only costs the worker the poll it would have made anyway: it is logged,
// not answered.
func (s *Server) nextWithResult(r *http.Request, workerID string) *protocol.TaskPayload {
	if s.closing.Err() != nil {
		return nil
	}
	task, err := s.eng.TakeTask(r.Context(), workerID)
	if err != nil {
		s.log.Warn("next task with a result", append(requestAttrs(r), "worker_id", workerID, "error", err)...)
		return nil
	}
	if task == nil {
		return nil
	}
	if err := s.signTask(task); err != nil {
		s.log.Error("sign task", append(requestAttrs(r), "task_id", task.TaskID, "error", err)...)
		return nil
	}
	return task
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	if !s.preAuthWorker(w, r, "") {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var ev protocol.WorkerEvent
	if !decodeJSON(w, body, &ev) {
		return
	}
	if ev.EventType == "" {
		writeError(w, http.StatusBadRequest, "Invalid WorkerEventPayload: event_type is required")
		return
	}
	id, undo, ok := s.signed(w, r, body, ev.WorkerID, signedMsg{kind: msgEvent})
	if !ok {
		return
	}
	if err := s.eng.WorkerEvent(r.Context(), id, ev); err != nil {
		undo()
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "event_accepted"})
}

// --- short-lived tokens ---

func stsKey(kind, token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sts:" + kind + ":" + hex.EncodeToString(sum[:])
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Server) issueFor(w http.ResponseWriter, r *http.Request, workerID string) {
	access, err1 := randomToken()
	refresh, err2 := randomToken()
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.store.PutValue(ctx, stsKey("access", access), workerID, s.opts.STSTokenTTL); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.PutValue(ctx, stsKey("refresh", refresh), workerID, s.opts.STSRefreshTTL); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.TokenResponse{
		AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.opts.STSTokenTTL / time.Second), WorkerID: workerID,
	})
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	id, _, status, err := s.authWorker(r, "")
	if err != nil {
		writeError(w, status, "%v", err)
		return
	}
	s.issueFor(w, r, id)
}

func (s *Server) refreshToken(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	if !s.preAuthRefresh(w, r) {
		return
	}
	body, ok := s.readBodyLimit(w, r, refreshBodyLimit)
	if !ok {
		return
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decodeJSON(w, body, &req) {
		return
	}
	if req.RefreshToken == "" {
		writeError(w, http.StatusBadRequest, "Missing refresh_token in payload")
		return
	}
	id := r.Header.Get(protocol.HeaderWorkerID)
	if id == "" {
		writeError(w, http.StatusBadRequest, "Missing worker_id identification")
		return
	}
	owner, err := s.store.GetValue(r.Context(), stsKey("refresh", req.RefreshToken))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusForbidden, "Unauthorized: Invalid refresh token (not found)")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if owner != id {
		writeError(w, http.StatusForbidden, "Unauthorized: Invalid refresh token (owner mismatch)")
		return
	}
	s.issueFor(w, r, id)
}
