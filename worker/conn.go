package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/ctxtime"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/coder/websocket"
)

// conn is the worker's session with one orchestrator: registration,
// heartbeats, polling state, WebSocket and credentials.
type conn struct {
	w    *Worker
	o    Orchestrator
	base *url.URL
	key  string // master token: HMAC key and default X-Worker-Token
	log  *slog.Logger

	// The values of the headers every request carries, made once.
	keyHeader, idHeader []string

	kick       chan struct{} // asks for a state-change heartbeat
	reregister chan struct{} // the orchestrator no longer knows the worker
	stsKick    chan struct{} // the access token was refused

	mu         sync.Mutex
	registered bool
	syncedHash string               // skills_hash the orchestrator holds with full skills
	lastHB     time.Time            // when the last heartbeat was sent
	sigs       map[string]time.Time // signatures sent in the replay window
	sigsPruned time.Time
	access     string // STS access token, "" = use key
	refresh    string // STS refresh token
	ws         *websocket.Conn

	// Poll state, used by the poll loop goroutine only.
	pollFails int
	pollNext  time.Time
	rrCurrent int
}

func newConn(w *Worker, o Orchestrator) *conn {
	base, _ := normalizeBaseURL(o.URL) // validated by Config.withDefaults
	key := o.Token
	if key == "" {
		key = w.cfg.Token
	}
	if o.Weight <= 0 {
		o.Weight = 1
	}
	return &conn{
		w: w, o: o, base: base, key: key,
		keyHeader: []string{key}, idHeader: []string{w.cfg.ID},
		log:        w.log.With("orchestrator", base.Redacted()),
		kick:       make(chan struct{}, 1),
		reregister: make(chan struct{}, 1),
		stsKick:    make(chan struct{}, 1),
		sigs:       map[string]time.Time{},
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// bearerToken returns the X-Worker-Token to send, and whether it is an STS
// access token.
func (c *conn) bearerToken() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access != "" {
		return c.access, true
	}
	return c.key, false
}

// dropAccessToken goes back to the master token after the orchestrator
// refused the access token, and asks the STS loop for a new one.
func (c *conn) dropAccessToken(token string) {
	c.mu.Lock()
	dropped := c.access == token && token != ""
	if dropped {
		c.access = ""
	}
	c.mu.Unlock()
	if dropped {
		c.log.Warn("access token refused; using the master token")
		signal(c.stsKick)
	}
}

func (c *conn) isRegistered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registered
}

func (c *conn) setRegistered(ok bool) {
	c.mu.Lock()
	changed := c.registered != ok
	c.registered = ok
	if ok {
		c.syncedHash = c.w.skillsHash // the registration carried every skill
	} else {
		c.syncedHash = ""
	}
	c.mu.Unlock()
	if changed {
		c.w.stateChanged()
		if ok {
			c.w.markRegistered()
		}
	}
}

// lost records that the orchestrator no longer knows the worker and wakes
// the manager to register again.
func (c *conn) lost(err error) {
	if c.isRegistered() {
		c.log.Warn("orchestrator does not know this worker; registering again", "error", err)
	}
	c.setRegistered(false)
	signal(c.reregister)
}

// manage registers with the orchestrator and then sends heartbeats, until
// ctx ends (nil); it registers again whenever the session is lost. It
// returns an error wrapping ErrCredentialsRejected when the orchestrator
// keeps refusing the worker's credentials.
func (c *conn) manage(ctx context.Context) error {
	for {
		if err := c.register(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.heartbeatLoop(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// ErrCredentialsRejected is wrapped by the error Run returns when every
// orchestrator answered the worker's registration with 401 or 403
// Config.RegistrationMaxAuthFailures times in a row: a wrong token or worker
// id does not fix itself, and retrying forever would hide it.
var ErrCredentialsRejected = errors.New("orchestrator rejected the worker's credentials")

// register sends the registration until it succeeds (nil) or ctx ends. It
// retries network errors, 5xx and 429 with back-off for ever, but gives up
// after RegistrationMaxAuthFailures answers of 401 or 403 in a row.
func (c *conn) register(ctx context.Context) error {
	cfg := &c.w.cfg
	refused := 0
	for attempt := 0; ; attempt++ {
		_, viaAccess := c.bearerToken()
		err := c.finishing(ctx, c.registerOnce)
		if err == nil {
			// A lost-session signal from before this registration is stale.
			select {
			case <-c.reregister:
			default:
			}
			c.setRegistered(true)
			c.log.Info("registered", "attempt", attempt+1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		status := statusOf(err)
		authFailed := status == http.StatusUnauthorized || status == http.StatusForbidden
		switch {
		case !authFailed:
			refused = 0
		case !viaAccess:
			// A refused STS access token is dropped and the master token
			// tried next: only refusals of the master token count.
			refused++
		}
		if authFailed && cfg.RegistrationMaxAuthFailures > 0 && refused >= cfg.RegistrationMaxAuthFailures {
			err = fmt.Errorf("worker: %w at %s, %d times in a row: %w; %s",
				ErrCredentialsRejected, c.base.Redacted(), refused, err, c.credentialsHint(err))
			c.log.Error("registration refused; giving up on this orchestrator", "error", err)
			return err
		}
		wait := retryWait(err, backoff(cfg.RetryDelay, attempt, cfg.RetryMaxDelay), cfg.RateLimitFloor)
		level := slog.LevelWarn
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
			level = slog.LevelError
		}
		attrs := []any{"error", err, "attempt", attempt + 1, "retry_in", wait}
		if authFailed {
			attrs = append(attrs, "hint", c.credentialsHint(err))
		}
		c.log.Log(ctx, level, "registration failed; retrying", attrs...)
		if !ctxtime.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// credentialsHint tells the operator which setting to fix after the
// orchestrator refused the registration with err (401 or 403).
func (c *conn) credentialsHint(err error) string {
	var he *httpError
	if errors.As(err, &he) && strings.Contains(he.Message, protocol.ErrStaleTimestamp.Error()) {
		return fmt.Sprintf("the worker's clock is more than %.0f seconds away from the orchestrator's: synchronise it (NTP)", protocol.ReplayWindow.Seconds())
	}
	setting := "WORKER_TOKEN (or WORKER_INDIVIDUAL_TOKEN, which wins when set)"
	if c.o.Token != "" {
		setting = "the token of " + c.base.Redacted() + " in ORCHESTRATORS_CONFIG"
	}
	return fmt.Sprintf("check %s: it must be the orchestrator's GLOBAL_WORKER_TOKEN, or, with per-worker tokens, the one its workers config holds for WORKER_ID=%q", setting, c.w.cfg.ID)
}

func (c *conn) registerOnce(ctx context.Context) error {
	reg := c.w.registration()
	raw, sig, err := c.sign(ctx, signedRegistration{&reg}, false)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var resp protocol.RegisterResponse
	if _, err := c.do(ctx, request{method: http.MethodPost, path: protocol.PathRegister, body: raw, timeout: c.w.cfg.RequestTimeout}, &resp); err != nil {
		c.notSent(sig, err)
		return fmt.Errorf("register: %w", err)
	}
	if resp.Warning != "" {
		c.log.Warn("orchestrator warning on registration", "warning", resp.Warning)
	}
	if resp.Version != "" && resp.Version != protocol.Version {
		c.log.Info("orchestrator speaks another protocol version", "orchestrator_version", resp.Version, "worker_version", protocol.Version)
	}
	return nil
}

// finishing runs a state-changing request that may complete after ctx ends
// (for a few seconds at most): an aborted heartbeat could still reach the
// orchestrator after the final "offline" one and mark the worker idle again.
func (c *conn) finishing(ctx context.Context, send func(context.Context) error) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	grace := min(c.w.cfg.RequestTimeout, 3*time.Second)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(rctx, func() { t.Stop() })
	})
	defer stop()
	return send(rctx)
}

// heartbeatLoop sends heartbeats every interval and after state changes,
// until ctx ends or the session is lost.
func (c *conn) heartbeatLoop(ctx context.Context) {
	cfg := &c.w.cfg
	timer := time.NewTimer(0) // the first heartbeat right after registering
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.reregister:
			c.setRegistered(false)
			return
		case <-timer.C:
		case <-c.kick:
			// Debounce, and keep heartbeats to one orchestrator apart.
			c.mu.Lock()
			wait := cfg.HeartbeatCooldown - time.Since(c.lastHB)
			c.mu.Unlock()
			if wait < cfg.HeartbeatDebounce {
				wait = cfg.HeartbeatDebounce
			}
			if !ctxtime.Sleep(ctx, wait) {
				return
			}
			select {
			case <-c.kick: // coalesce the changes made meanwhile
			default:
			}
		}
		err := c.finishing(ctx, func(ctx context.Context) error { return c.heartbeat(ctx, "") })
		next := cfg.HeartbeatInterval
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return
		case sessionLost(err):
			c.lost(err)
			return
		default:
			failures++
			next = retryWait(err, backoff(cfg.HeartbeatInterval, failures-1, max(cfg.RetryMaxDelay, cfg.HeartbeatInterval)), cfg.RateLimitFloor)
			c.log.Warn("heartbeat failed", "error", err, "retry_in", next)
		}
		timer.Reset(next)
	}
}

// heartbeat sends one heartbeat; status overrides the computed status when
// not empty.
func (c *conn) heartbeat(ctx context.Context, status string) error {
	hb := c.w.heartbeatFor(c)
	if status != "" {
		hb.Status = status
	}
	c.mu.Lock()
	if c.syncedHash != hb.SkillsHash {
		hb.SupportedSkills = c.w.infos
	}
	c.lastHB = time.Now()
	c.mu.Unlock()
	raw, sig, err := c.sign(ctx, signedHeartbeat{&hb}, false)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	var resp protocol.HeartbeatResponse
	path := protocol.WorkerPrefix + "/workers/" + url.PathEscape(c.w.cfg.ID)
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: path, body: raw, timeout: c.w.cfg.RequestTimeout}, &resp); err != nil {
		c.notSent(sig, err)
		return fmt.Errorf("heartbeat: %w", err)
	}
	if resp.Reregister {
		return fmt.Errorf("heartbeat: %w", &httpError{Status: http.StatusNotFound, Message: "orchestrator asked to register again", RetryAfter: -1})
	}
	c.mu.Lock()
	if resp.RequireFullSync {
		c.syncedHash = ""
	} else {
		c.syncedHash = hb.SkillsHash
	}
	c.mu.Unlock()
	if resp.RequireFullSync {
		signal(c.kick)
	}
	for _, id := range resp.CancelTaskIDs {
		c.w.cancelTask(id, c, "heartbeat response")
	}
	c.log.Debug("heartbeat sent", "status", hb.Status, "current_tasks", len(hb.CurrentTasks))
	return nil
}

// polledTask is a task as received, with its params kept verbatim.
// TaskPayload.Params stays nil: handlers read rawParams (Task.Params,
// Task.Decode), so decoding them into a map here would be thrown away.
type polledTask struct {
	protocol.TaskPayload
	rawParams json.RawMessage
	raw       []byte // the whole task, for its signature
}

func (p *polledTask) UnmarshalJSON(b []byte) error {
	var doc struct {
		protocol.TaskPayload
		Params json.RawMessage `json:"params"` // shadows TaskPayload.Params
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.Params) > 0 && doc.Params[0] != '{' && string(doc.Params) != "null" {
		return errors.New("task params are not a JSON object")
	}
	p.TaskPayload, p.rawParams, p.raw = doc.TaskPayload, doc.Params, slices.Clone(b)
	return nil
}

// poll asks for the next task; nil without error means none came.
func (c *conn) poll(ctx context.Context, available, hot []string) (*polledTask, error) {
	cfg := &c.w.cfg
	q := url.Values{}
	q.Set("timeout", strconv.FormatFloat(cfg.PollTimeout.Seconds(), 'f', -1, 64))
	if len(available) > 0 {
		q.Set("available_skills", strings.Join(available, ","))
	}
	if len(hot) > 0 {
		q.Set("hot_skills", strings.Join(hot, ","))
	}
	path := protocol.WorkerPrefix + "/workers/" + url.PathEscape(cfg.ID) + "/tasks/next"
	var p polledTask
	status, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q.Encode(), timeout: cfg.PollTimeout + 5*time.Second}, &p)
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	if err := p.complete(); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	return &p, nil
}

// complete checks a task as received and fills in empty params.
func (p *polledTask) complete() error {
	if p.TaskID == "" || p.Type == "" {
		return fmt.Errorf("%w: task without task_id or type", errBadResponse)
	}
	if len(p.rawParams) == 0 || string(p.rawParams) == "null" {
		p.rawParams = json.RawMessage("{}")
	}
	return nil
}

// pollFailed starts or extends the poll back-off after err.
func (c *conn) pollFailed(err error) {
	cfg := &c.w.cfg
	if sessionLost(err) {
		c.lost(err)
	}
	wait := retryWait(err, backoff(cfg.PollErrorDelay, c.pollFails, cfg.PollBackoffMax), cfg.RateLimitFloor)
	c.pollFails++
	c.pollNext = time.Now().Add(wait)
	c.log.Warn("poll failed", "error", err, "retry_in", wait)
}

func (c *conn) pollOK() {
	c.pollFails = 0
	c.pollNext = time.Time{}
}

// resultAnswer is the answer to a result, with its next task kept verbatim.
type resultAnswer struct {
	protocol.ResultResponse
	Next *polledTask `json:"next_task"` // shadows ResultResponse.NextTask
}

// sendResult delivers a result, re-signed on every attempt. Network errors,
// 408, 429 and 5xx are retried; an "ignored" answer or another 4xx is final.
// With askNext it asks for the next task in the answer and returns the one
// that came (nil if none).
func (c *conn) sendResult(ctx context.Context, res protocol.TaskResult, log func() *slog.Logger, askNext bool) *polledTask {
	cfg := &c.w.cfg
	query := ""
	if askNext {
		query = protocol.QueryNext + "=1"
	}
	for attempt := 0; attempt < cfg.ResultMaxRetries; attempt++ {
		raw, sig, err := c.sign(ctx, signedResult{&res}, false)
		if err != nil {
			log().Error("result not sent", "error", err)
			return nil
		}
		var rr resultAnswer
		_, err = c.do(ctx, request{method: http.MethodPost, path: protocol.PathResult, query: query, body: raw, timeout: cfg.RequestTimeout}, &rr)
		c.notSent(sig, err)
		if err == nil {
			switch {
			case rr.Status == protocol.ResultIgnored:
				lv := slog.LevelWarn
				if rr.Reason == protocol.IgnoredDeadlineExceeded || rr.Reason == protocol.IgnoredJobCancelled {
					lv = slog.LevelInfo
				}
				log().Log(ctx, lv, "result ignored by the orchestrator", "status", res.Status, "reason", rr.Reason, "message", rr.Message)
			default:
				if c.log.Enabled(ctx, slog.LevelDebug) {
					log().Debug("result delivered", "status", res.Status, "transition", rr.Transition)
				}
			}
			if !askNext || rr.Next == nil {
				return nil
			}
			if err := rr.Next.complete(); err != nil {
				log().Error("next task in the result's answer refused", "error", err)
				return nil
			}
			return rr.Next
		}
		if ctx.Err() != nil {
			log().Error("result not delivered: worker stopped", "status", res.Status, "error", err)
			return nil
		}
		if !retryable(err) {
			log().Error("result rejected by the orchestrator", "status", res.Status, "error", err)
			return nil
		}
		if attempt == cfg.ResultMaxRetries-1 {
			log().Error("result not delivered; giving up", "status", res.Status, "attempts", attempt+1, "error", err)
			return nil
		}
		wait := retryWait(err, backoff(cfg.ResultRetryDelay, attempt, cfg.RetryMaxDelay), cfg.RateLimitFloor)
		log().Warn("result not delivered; retrying", "error", err, "attempt", attempt+1, "retry_in", wait)
		if !ctxtime.Sleep(ctx, wait) {
			log().Error("result not delivered: worker stopped", "status", res.Status, "error", err)
			return nil
		}
	}
	return nil
}

// sendEvent sends a signed event over the WebSocket when one is open, else
// over HTTP.
func (c *conn) sendEvent(ctx context.Context, ev protocol.WorkerEvent) error {
	raw, _, err := c.sign(ctx, signedEvent{&ev}, true)
	if err != nil {
		return fmt.Errorf("event %s: %w", ev.EventType, err)
	}
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		wctx, cancel := context.WithTimeout(ctx, c.w.cfg.RequestTimeout)
		err := ws.Write(wctx, websocket.MessageText, raw)
		cancel()
		if err == nil {
			return nil
		}
		c.log.Debug("event not sent over WebSocket; using HTTP", "error", err)
	}
	var resp struct {
		Status  string `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: protocol.PathEvents, body: raw, timeout: c.w.cfg.RequestTimeout}, &resp); err != nil {
		return fmt.Errorf("event %s: %w", ev.EventType, err)
	}
	if resp.Status == "error" {
		return fmt.Errorf("event %s refused: %s: %s", ev.EventType, resp.Code, resp.Message)
	}
	return nil
}

// listen keeps a WebSocket command channel open while the worker is
// registered, reconnecting with back-off, until ctx ends.
func (c *conn) listen(ctx context.Context) {
	cfg := &c.w.cfg
	attempt := 0
	for {
		if !c.w.waitFor(ctx, c.isRegistered) {
			return
		}
		ws, err := c.dialWS(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := retryWait(err, backoff(cfg.RetryDelay, attempt, cfg.RetryMaxDelay), cfg.RateLimitFloor)
			attempt++
			c.log.Warn("WebSocket connection failed; retrying", "error", err, "retry_in", wait)
			if !ctxtime.Sleep(ctx, wait) {
				return
			}
			continue
		}
		attempt = 0
		c.log.Info("WebSocket connected")
		c.mu.Lock()
		c.ws = ws
		c.mu.Unlock()
		err = c.readCommands(ctx, ws)
		c.mu.Lock()
		c.ws = nil
		c.mu.Unlock()
		ws.CloseNow()
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("WebSocket closed; reconnecting", "error", err)
		if !ctxtime.Sleep(ctx, backoff(cfg.RetryDelay, 0, cfg.RetryMaxDelay)) {
			return
		}
	}
}

func (c *conn) dialWS(ctx context.Context) (*websocket.Conn, error) {
	u := *c.base
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = c.base.Path + protocol.WorkerPrefix + "/ws/" + url.PathEscape(c.w.cfg.ID)
	h := http.Header{}
	bearer, sts := c.bearerToken()
	c.setHeaders(h, bearer)
	h.Del("Accept")
	dctx, cancel := context.WithTimeout(ctx, c.w.cfg.RequestTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: c.w.httpClient, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			if sts && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
				c.dropAccessToken(bearer)
			}
			// Re-registration is left to heartbeats: an orchestrator without
			// the WebSocket route answers 404 too.
			he := &httpError{Status: resp.StatusCode, Message: err.Error(), RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
			return nil, fmt.Errorf("websocket: %w", he)
		}
		return nil, fmt.Errorf("websocket: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// readCommands handles command frames until the connection or ctx ends.
func (c *conn) readCommands(ctx context.Context, ws *websocket.Conn) error {
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			continue
		}
		var cmd protocol.Command
		if err := json.Unmarshal(data, &cmd); err != nil || cmd.Command == "" {
			c.log.Warn("unreadable WebSocket frame ignored", "error", err)
			continue
		}
		c.w.handleCommand(ctx, c, cmd)
	}
}

// rotateTokens obtains a short-lived access token and renews it before it
// expires, until ctx ends. Messages stay signed with the master token.
func (c *conn) rotateTokens(ctx context.Context) {
	cfg := &c.w.cfg
	attempt := 0
	for {
		if !c.w.waitFor(ctx, c.isRegistered) {
			return
		}
		c.mu.Lock()
		refresh := c.refresh
		c.mu.Unlock()
		var tr protocol.TokenResponse
		var err error
		if refresh != "" {
			body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
			_, err = c.do(ctx, request{method: http.MethodPost, path: protocol.PathTokenRefresh, body: body, timeout: cfg.RequestTimeout, bearer: c.key}, &tr)
		} else {
			_, err = c.do(ctx, request{method: http.MethodPost, path: protocol.PathToken, timeout: cfg.RequestTimeout, bearer: c.key}, &tr)
		}
		if err == nil && tr.AccessToken == "" {
			err = fmt.Errorf("%w: no access_token", errBadResponse)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.refresh = "" // start over with the master token
			c.mu.Unlock()
			wait := retryWait(err, backoff(cfg.RetryDelay, attempt, cfg.RetryMaxDelay), cfg.RateLimitFloor)
			attempt++
			c.log.Warn("access token request failed", "error", err, "retry_in", wait)
			if !ctxtime.Sleep(ctx, wait) {
				return
			}
			continue
		}
		attempt = 0
		c.mu.Lock()
		c.access, c.refresh = tr.AccessToken, tr.RefreshToken
		c.mu.Unlock()
		renew := time.Duration(float64(tr.ExpiresIn) * 0.8 * float64(time.Second))
		renew = max(renew, time.Second)
		c.log.Info("access token obtained", "expires_in", tr.ExpiresIn)
		t := time.NewTimer(renew)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.stsKick:
			t.Stop()
		}
	}
}
