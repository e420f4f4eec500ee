// Package api serves the orchestrator over HTTP: the client API under
// /api/{version}, the RXON worker protocol under /_worker, and the public
// routes under /_public (status, readiness, API docs, approval webhook).
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/internal/httpbody"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Options configures a Server.
type Options struct {
	Engine  *engine.Engine
	Clients *auth.Clients
	Workers *auth.WorkerTokens
	Logger  *slog.Logger

	// AdminToken guards the reload endpoint; empty disables it.
	AdminToken string
	// Reload re-reads clients.toml and workers.toml (admin endpoint).
	Reload func() (clients, workers int, err error)
	// ReloadWorkers re-reads workers.toml only (upstream's
	// /admin/reload-workers) and returns the number of worker tokens.
	ReloadWorkers func() (workers int, err error)
	// TaskSigningKey, when set, signs every task handed out
	// (protocol.SignTask; ORCHESTRATOR_SECRET_KEY).
	TaskSigningKey string
	// Metrics serves /_public/metrics (Prometheus text); nil: 404.
	Metrics http.Handler
	// History is the audit trail (nil: history disabled). It answers
	// /jobs/{id}/history, listings, and jobs the live store has expired.
	History history.Store
	// FlushHistory waits until history holds the events committed before
	// a history read; a read goes on without it after a moment.
	FlushHistory func(ctx context.Context) error
	// HistoryTimeout bounds a history read: past it, or while the history
	// database fails, the route answers 503 (5s).
	HistoryTimeout time.Duration
	// Schedules lists the scheduler's schedules (admin endpoint).
	Schedules func(ctx context.Context) ([]protocol.ScheduleInfo, error)

	MaxBodyBytes    int64         // request body limit (10 MiB)
	RateLimit       int           // client requests per RatePeriod; 0 disables rate limiting
	RatePeriod      time.Duration // rate-limit window (1 minute)
	STSTokenTTL     time.Duration // short-lived worker token lifetime (1 hour)
	STSRefreshTTL   time.Duration // refresh token lifetime (24 hours)
	BuildVersion    string
	PublicURL       string // shown in the OpenAPI document's servers; "" = relative
	WrapHandler     func(http.Handler) http.Handler
	AllowWebhookURL func(rawURL string) error // extra check of webhook URLs (nil: http(s) only)

	// Blobs serves the job file routes; nil makes them answer 501.
	Blobs blob.Store
	// BlobHandler serves the local backend's presigned URLs under
	// /_public/blobs (nil: 404).
	BlobHandler http.Handler
	// MaxUploadBytes bounds a streamed file upload (5 GiB).
	MaxUploadBytes int64
	// BodyTimeout is the time a JSON request body has to arrive in full,
	// and the longest pause in a streamed upload (DefaultBodyTimeout;
	// negative: none). A server made with Harden uses its Limits instead.
	BodyTimeout time.Duration
	// S3ConfigHash is compared with the s3_config_hash workers register
	// with; a mismatch is logged.
	S3ConfigHash string
}

// Server is the HTTP face of an engine.
type Server struct {
	opts    Options
	eng     *engine.Engine
	store   store.Store
	log     *slog.Logger
	mux     *http.ServeMux
	ws      *wsHub
	openapi []byte

	// handler is the mux behind its middleware, built once by Handler.
	handlerOnce sync.Once
	handler     http.Handler

	// closing ends when Close is called: long polls answer 204 from then on.
	closing   context.Context
	closeDone context.CancelFunc
}

// New builds the routes for the engine's registered blueprints.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil || opts.Clients == nil || opts.Workers == nil {
		return nil, errors.New("api: engine, clients and workers are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 10 << 20
	}
	if opts.RatePeriod <= 0 {
		opts.RatePeriod = time.Minute
	}
	if opts.STSTokenTTL <= 0 {
		opts.STSTokenTTL = time.Hour
	}
	if opts.STSRefreshTTL <= 0 {
		opts.STSRefreshTTL = 24 * time.Hour
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 5 << 30
	}
	if opts.BodyTimeout == 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	s := &Server{opts: opts, eng: opts.Engine, store: opts.Engine.Store(), log: opts.Logger, mux: http.NewServeMux()}
	s.closing, s.closeDone = context.WithCancel(context.Background())
	s.ws = newWSHub(s.log)
	s.routes()
	doc, err := s.buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("build OpenAPI document: %w", err)
	}
	s.openapi = doc
	return s, nil
}

// Handler returns the HTTP handler: the routes behind their middleware,
// built on the first call and the same one after.
func (s *Server) Handler() http.Handler {
	s.handlerOnce.Do(func() {
		// The recoverer runs inside the wrapper, so that a panic's log
		// line has the request's span and route, and the wrapper sees the
		// 500.
		s.handler = s.recoverer(s.guard(s.allow(s.mux)))
		if s.opts.WrapHandler != nil {
			s.handler = s.opts.WrapHandler(s.handler)
		}
	})
	return s.handler
}

// Mount serves h for a mux pattern (such as "/console/") beside the API
// routes, behind the same guard, recoverer and wrapper. Mount before
// serving.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// OnEvent receives engine events; it pushes cancel commands to workers
// connected over WebSocket.
func (s *Server) OnEvent(ev engine.Event) {
	if ev.Type == engine.EventCancelTask && ev.WorkerID != "" {
		s.ws.send(ev.WorkerID, protocol.Command{Command: protocol.CommandCancelTask, TaskID: ev.TaskID, JobID: ev.JobID})
	}
}

// Close releases the long polls in progress (they answer 204, as do later
// ones) and closes WebSocket connections (code 1001, going away). Other
// requests are served as before, and the engine keeps running: call Close,
// then http.Server.Shutdown to let in-flight requests finish, then stop the
// engine. Close may be called more than once.
func (s *Server) Close() {
	s.closeDone()
	s.ws.closeAll()
}

// versions returns the API versions to serve: v1 plus every version a
// blueprint endpoint declares.
func (s *Server) versions() []string {
	vs := []string{"v1"}
	for _, bp := range s.eng.Blueprints() {
		if v, p := bp.API(); p != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	sort.Strings(vs)
	return vs
}

// --- responses ---

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// contentTypeJSON is shared by every answer, unchanged: net/http copies a
// handler's headers out before it writes them.
var contentTypeJSON = []string{"application/json"}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, protocol.ErrorBody{Error: fmt.Sprintf(format, args...)})
}

// fail answers an error from the engine or the store with the right status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, engine.ErrJobNotFound):
		writeError(w, http.StatusNotFound, "Job not found")
	case errors.Is(err, engine.ErrUnknownBlueprint):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, engine.ErrUnknownWorker):
		// The upstream Python SDK registers again when the error contains
		// "not found"; ours on any 404.
		writeError(w, http.StatusNotFound, "%s", unknownWorker)
	case errors.Is(err, engine.ErrInvalidInput), errors.Is(err, engine.ErrInvalidDecision):
		writeError(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, engine.ErrNotRetryable):
		writeError(w, http.StatusConflict, "%v", err)
	case errors.Is(err, engine.ErrNotAwaitingHuman):
		writeError(w, http.StatusConflict, "Job is not in a state that can be approved (%v)", err)
	case errors.Is(err, engine.ErrWorkerIDMismatch):
		writeError(w, http.StatusForbidden, "Forbidden: %v", err)
	case errors.Is(err, engine.ErrNotStarted), errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("service unavailable", append(requestAttrs(r), "error", err)...)
		writeError(w, http.StatusServiceUnavailable, "service unavailable, try again shortly")
	case errors.Is(err, errHistoryUnavailable):
		s.log.Warn("history unavailable", append(requestAttrs(r), "error", err)...)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the history database is unavailable, try again shortly")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		s.log.Error("request failed", append(requestAttrs(r), "error", err)...)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// unknownWorker answers a worker the orchestrator does not know (never
// registered, or expired).
const unknownWorker = "Worker not found: register again"

// requestAttrs describes a request in a log line: method, path, and the job
// and trace it belongs to when known. Never headers: they carry tokens.
func requestAttrs(r *http.Request) []any {
	attrs := []any{"method", r.Method, "path", r.URL.Path}
	// {id} and {job_id} name a job on every route that has them.
	if id := cmp.Or(r.PathValue("id"), r.PathValue("job_id")); id != "" {
		attrs = append(attrs, "job_id", id)
	}
	if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		attrs = append(attrs, "trace_id", sc.TraceID().String())
	}
	return attrs
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				s.log.Error("handler panicked", append(requestAttrs(r), "panic", v, "stack", string(debug.Stack()))...)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// guard answers, before any route sees the request, a connection over its
// address's limit (429) and a path or query that no route can take (400:
// control characters such as NUL, invalid UTF-8, a malformed query), so
// that such input reaches neither the store nor the history database.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if overConnLimit(w, r) {
			return
		}
		if err := checkRequestInput(r); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodyTimeout is the time a request body has to arrive: Harden's limit
// when the server has one, else the Options'.
func (s *Server) bodyTimeout(r *http.Request) time.Duration {
	if info := connInfoFrom(r.Context()); info != nil {
		return info.bodyTimeout
	}
	return s.opts.BodyTimeout
}

// readBody reads a JSON request body within the size limit and the body
// timeout, and checks that it is UTF-8; it answers 413, 408 or 400 itself
// and returns false then.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return s.readBodyLimit(w, r, s.opts.MaxBodyBytes)
}

func (s *Server) readBodyLimit(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large: the limit is %d bytes", limit)
		return nil, false
	}
	timeout := s.bodyTimeout(r)
	rc := http.NewResponseController(w)
	// The deadline covers the whole body, so that a body trickling in holds
	// a connection for timeout at most. Writers that cannot set one
	// (httptest recorders) read without.
	deadline := timeout > 0 && rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	buf, err := httpbody.Read(r.Body, r.ContentLength)
	if deadline && !errors.Is(err, os.ErrDeadlineExceeded) {
		// Once the body is in, the server watches the connection for the
		// client going away; a deadline left set would cancel the request
		// when it passes. A deadline that passed stays: the server would
		// otherwise go on reading what is left of the body after answering.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large: the limit is %d bytes", limit)
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, "the request body did not arrive within %s (REQUEST_BODY_TIMEOUT)", timeout)
		default:
			writeError(w, http.StatusBadRequest, "could not read the request body: %v", err)
		}
		return nil, false
	}
	if err := checkUTF8(buf); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return nil, false
	}
	return buf, true
}

// idleDeadline gives a streamed request body (a file upload) the body
// timeout between reads rather than in total: each read that brings data
// moves the deadline. done clears it once the body has been read (unless
// it passed: see readBodyLimit).
func (s *Server) idleDeadline(w http.ResponseWriter, r *http.Request) (done func()) {
	timeout := s.bodyTimeout(r)
	rc := http.NewResponseController(w)
	if timeout <= 0 || rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		return func() {}
	}
	b := &idleBody{ReadCloser: r.Body, rc: rc, timeout: timeout, moved: time.Now()}
	r.Body = b
	return func() {
		if !b.timedOut {
			_ = rc.SetReadDeadline(time.Time{})
		}
	}
}

type idleBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	timeout  time.Duration
	moved    time.Time
	timedOut bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut = true
	}
	// Moving the deadline at most every timeout/8 keeps the cost of a
	// fast upload down; a pause may then be up to an eighth shorter.
	if now := time.Now(); n > 0 && now.Sub(b.moved) >= b.timeout/8 {
		b.moved = now
		_ = b.rc.SetReadDeadline(now.Add(b.timeout))
	}
	return n, err
}

// decodeJSON decodes a JSON object body into v; it answers 400 itself.
func decodeJSON(w http.ResponseWriter, body []byte, v any) bool {
	if err := strictUnmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body: %v", err)
		return false
	}
	return true
}

// --- public routes ---

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store unavailable: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
