package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/ctxtime"
	"github.com/avtomatika-ai/avtomatika-go/internal/httpbody"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// maxResponseBody bounds what the worker reads from one response.
const maxResponseBody = 32 << 20

// httpError is a non-2xx answer of the orchestrator.
type httpError struct {
	Status  int
	Message string // the body's "error" member, or the raw body
	// RetryAfter is the parsed Retry-After header; negative when absent.
	RetryAfter time.Duration
}

func (e *httpError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// statusOf returns the HTTP status of err, or 0 for other errors.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// retryable reports whether a request that failed with err may succeed if
// sent again: network errors, 408, 429 and 5xx.
func retryable(err error) bool {
	switch s := statusOf(err); {
	case s == 0:
		return !errors.Is(err, errBadResponse)
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return true
	}
	return false
}

// sessionLost reports whether err says the orchestrator does not know the
// worker (any more): 404, or an auth failure about an unknown worker.
func sessionLost(err error) bool {
	var he *httpError
	if !errors.As(err, &he) {
		return false
	}
	if he.Status == http.StatusNotFound {
		return true
	}
	if he.Status != http.StatusUnauthorized && he.Status != http.StatusForbidden {
		return false
	}
	msg := strings.ToLower(he.Message)
	for _, s := range []string{"unauthorized", "not found", "not registered", "register again", "unknown worker"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// errBadResponse marks a 2xx answer the worker cannot read.
var errBadResponse = errors.New("unreadable response")

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs > 24*3600 {
			return -1
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d
	}
	return -1
}

// backoff returns the wait before retry number attempt (0-based): base
// doubled attempt times, capped at max, with up to 20% taken off at random
// so that many workers do not retry in step.
func backoff(base time.Duration, attempt int, max time.Duration) time.Duration {
	if base <= 0 {
		base = time.Millisecond
	}
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	if j := int64(d / 5); j > 0 {
		d -= time.Duration(rand.Int64N(j + 1))
	}
	return d
}

// retryWait adjusts a computed back-off for what the orchestrator asked: a
// Retry-After header wins; a 429 without one waits at least floor.
func retryWait(err error, computed, floor time.Duration) time.Duration {
	var he *httpError
	if !errors.As(err, &he) {
		return computed
	}
	if he.RetryAfter >= 0 && (he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable) {
		return he.RetryAfter
	}
	if he.Status == http.StatusTooManyRequests && computed < floor {
		return floor
	}
	return computed
}

// request is one HTTP exchange with an orchestrator.
type request struct {
	method  string
	path    string
	query   string // encoded
	body    []byte // JSON, or nil
	timeout time.Duration
	bearer  string // X-Worker-Token override ("" = the connection's)
}

// do sends req and decodes a JSON 2xx answer into out (when not nil). It
// returns the status code; 204 leaves out untouched.
func (c *conn) do(ctx context.Context, req request, out any) (int, error) {
	if req.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.timeout)
		defer cancel()
	}
	u := *c.base
	u.Path = c.base.Path + req.path
	u.RawQuery = req.query
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	bearer, sts := req.bearer, false
	if bearer == "" {
		bearer, sts = c.bearerToken()
	}
	c.setHeaders(hr.Header, bearer)
	if req.body != nil {
		hr.Header["Content-Type"] = applicationJSON
	}
	resp, err := c.w.httpClient.Do(hr)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	raw, err := httpbody.Read(io.LimitReader(resp.Body, maxResponseBody), resp.ContentLength)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading response: %w", req.method, req.path, err)
	}
	if resp.StatusCode >= 400 {
		he := &httpError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		var eb protocol.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			he.Message = eb.Error
		} else {
			he.Message = strings.TrimSpace(string(raw))
			if len(he.Message) > 500 {
				he.Message = he.Message[:500]
			}
		}
		if sts && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			c.dropAccessToken(bearer)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %w", req.method, req.path, he)
	}
	if resp.StatusCode == http.StatusNoContent || out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w: HTTP %d: %v", req.method, req.path, errBadResponse, resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// Header values every request shares, never changed: net/http only reads
// a request's headers.
var (
	applicationJSON = []string{"application/json"}
	ourVersion      = []string{protocol.Version}
)

func (c *conn) setHeaders(h http.Header, bearer string) {
	token := c.keyHeader
	if bearer != c.key {
		token = []string{bearer}
	}
	h[protocol.HeaderWorkerToken] = token
	h[protocol.HeaderWorkerID] = c.idHeader
	h[protocol.HeaderVersion] = ourVersion
	h["Accept"] = applicationJSON
}

// signedMessage is a message whose timestamp and security context the
// worker fills in right before sending it.
type signedMessage interface {
	stamp(ts int64, sec *protocol.Security)
}

type signedRegistration struct{ *protocol.Registration }

func (m signedRegistration) stamp(ts int64, sec *protocol.Security) {
	m.Timestamp, m.Security = ts, sec
}

type signedHeartbeat struct{ *protocol.Heartbeat }

func (m signedHeartbeat) stamp(ts int64, sec *protocol.Security) {
	m.Timestamp, m.Security = ts, sec
}

type signedResult struct{ *protocol.TaskResult }

func (m signedResult) stamp(ts int64, sec *protocol.Security) {
	m.Timestamp, m.Security = ts, sec
}

type signedEvent struct{ *protocol.WorkerEvent }

func (m signedEvent) stamp(ts int64, sec *protocol.Security) {
	m.Timestamp, m.Security = ts, sec
}

// maxStampAhead is how far into the future sign may move a timestamp to
// keep signatures unique (the orchestrator accepts 60 s either way).
const maxStampAhead = 5

// sign stamps msg with the current time, signs it with the master token and
// returns its JSON. The orchestrator rejects a signature it has seen in the
// last minute (409), so when an identical message was already signed with
// this timestamp (a retry within the same second), the next seconds are
// used, and only if those are taken too does sign wait.
func (c *conn) sign(ctx context.Context, msg signedMessage, event bool) (raw []byte, sig string, err error) {
	for {
		now := time.Now()
		for ahead := int64(0); ahead <= maxStampAhead; ahead++ {
			ts := now.Unix() + ahead
			msg.stamp(ts, nil)
			unsigned, err := json.Marshal(msg)
			if err != nil {
				return nil, "", fmt.Errorf("encoding message: %w", err)
			}
			// Signed from its bytes, so that the message is encoded once.
			if event {
				sig, err = protocol.SignEvent(json.RawMessage(unsigned), c.key)
			} else {
				sig, err = protocol.Sign(json.RawMessage(unsigned), c.key)
			}
			if err != nil {
				return nil, "", err
			}
			// Events carry a fresh event_id: their signatures never repeat.
			if !event && !c.rememberSignature(sig, now) {
				continue
			}
			sec := &protocol.Security{Signature: sig, SignerID: c.w.cfg.ID}
			msg.stamp(ts, sec)
			if raw, err = withSecurity(unsigned, sec); err != nil {
				return nil, "", err
			}
			return raw, sig, nil
		}
		if !ctxtime.Sleep(ctx, time.Second) {
			return nil, "", ctx.Err()
		}
	}
}

// withSecurity returns a message's JSON object, encoded without its
// security member (it is nil and omitted then), with sec added as one.
func withSecurity(unsigned []byte, sec *protocol.Security) ([]byte, error) {
	s, err := json.Marshal(sec)
	if err != nil {
		return nil, fmt.Errorf("encoding message: %w", err)
	}
	raw := make([]byte, 0, len(unsigned)+len(s)+13)
	raw = append(raw, unsigned[:len(unsigned)-1]...) // the object without its '}'
	if len(unsigned) > 2 {
		raw = append(raw, ',')
	}
	raw = append(raw, `"security":`...)
	raw = append(raw, s...)
	return append(raw, '}'), nil
}

// rememberSignature records a signature about to be sent; false means it
// was already sent within the replay window.
func (c *conn) rememberSignature(sig string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.sigsPruned) > time.Second {
		for s, at := range c.sigs {
			if now.Sub(at) > protocol.ReplayWindow+(maxStampAhead+1)*time.Second {
				delete(c.sigs, s)
			}
		}
		c.sigsPruned = now
	}
	if _, seen := c.sigs[sig]; seen {
		return false
	}
	c.sigs[sig] = now
	return true
}

// notSent forgets the signature of a message whose request failed before
// reaching the orchestrator (the connection was refused), so that a retry
// may reuse the timestamp.
func (c *conn) notSent(sig string, err error) {
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		return
	}
	c.mu.Lock()
	delete(c.sigs, sig)
	c.mu.Unlock()
}
