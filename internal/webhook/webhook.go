// Package webhook delivers job notifications to the webhook_url of a job:
// one signed JSON POST per attempt. Retrying, backoff and durability belong to
// the engine, which schedules attempts as timers in the store.
//
// Deliveries obey an egress policy (see classify): only http and https, no
// redirects, and connections only to globally reachable addresses unless
// Options.AllowedHosts lists the host. A failed attempt's error message is
// a generic class (Error.Class), so that the job's history does not tell a
// closed port from an unknown host; the cause is kept for the server's log.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Options configure a Sender.
type Options struct {
	// Secret signs each request (X-Avtomatika-Signature); "" sends them unsigned.
	Secret string
	// Timeout bounds each attempt (10s).
	Timeout time.Duration
	// AllowedHosts exempt receivers from the egress policy (for internal
	// receivers): host names (the URL's host, matched exactly, whatever it
	// resolves to), IP addresses and CIDR prefixes (addresses in them,
	// whatever name leads there). See ParseAllowedHosts. A bad entry makes
	// the Sender refuse every delivery: validate the list first.
	AllowedHosts []string
	// Resolver looks up host names; nil uses net.DefaultResolver.
	Resolver Resolver
}

// Sender posts webhooks.
type Sender struct {
	client   *http.Client
	secret   string
	timeout  time.Duration
	allowErr error // a bad allow-list: every delivery is refused
}

// New returns a sender configured by o.
func New(o Options) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	allow, err := newAllowList(o.AllowedHosts)
	if err != nil {
		allow = &allowList{}
	}
	d := &dialer{allow: allow, resolver: o.Resolver, net: net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial in the policy's place
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	client := &http.Client{
		Transport: transport,
		// A redirect could lead anywhere, and would be followed as a GET.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{client: client, secret: o.Secret, timeout: o.Timeout, allowErr: err}
}

// Failure classes: the message of an Error.
const (
	ClassPolicy     = "refused by egress policy"
	ClassConnection = "connection failed"
	ClassTimeout    = "timeout"
	ClassBadURL     = "invalid webhook URL"
	ClassEncode     = "cannot encode the payload"
)

// Error is a failed attempt. Its message is only its class ("connection
// failed", "receiver answered 503", ...), fit for the job's history; the
// cause, with addresses and ports, is Unwrap's, for the server's log, which
// LogValue gives it.
type Error struct {
	class string
	cause error
}

func (e *Error) Error() string { return e.class }

// Class is the generic failure class, the same as Error.
func (e *Error) Class() string { return e.class }

// Unwrap returns the detailed cause (nil for an unwanted HTTP answer).
func (e *Error) Unwrap() error { return e.cause }

// LogValue shows the class and the cause in the server's own log.
func (e *Error) LogValue() slog.Value {
	if e.cause == nil {
		return slog.StringValue(e.class)
	}
	return slog.StringValue(e.class + ": " + e.cause.Error())
}

// Deliver sends one attempt. It returns the HTTP status (0 when none came
// back) and whether a failure is worth retrying: connection failures,
// timeouts, 408, 429 and 5xx are; other 4xx, 3xx (redirects are not
// followed) and refusals by the egress policy are not. A non-nil error is
// an *Error.
func (s *Sender) Deliver(ctx context.Context, rawURL string, p protocol.WebhookPayload) (status int, retry bool, err error) {
	body, err := json.Marshal(p)
	if err != nil {
		return 0, false, &Error{ClassEncode, err}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return 0, false, &Error{ClassBadURL, errors.New("not an absolute URL")}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return 0, false, &Error{ClassPolicy, fmt.Errorf("egress policy: scheme %q (only http and https)", u.Scheme)}
	}
	if u.Hostname() == "" {
		return 0, false, &Error{ClassBadURL, errors.New("no host")}
	}
	if s.allowErr != nil {
		return 0, false, &Error{ClassPolicy, fmt.Errorf("egress policy: the allow-list is invalid: %w", s.allowErr)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, false, &Error{ClassBadURL, errors.New("cannot build a request for it")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "avtomatika-webhook/1")
	if s.secret != "" {
		req.Header.Set(protocol.HeaderWebhookSignature, protocol.SignWebhook(s.secret, time.Now(), body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, transportRetry(err), transportError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, false, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return code, true, &Error{class: fmt.Sprintf("receiver answered %d", code)}
	case code >= 300 && code < 400:
		return code, false, &Error{class: fmt.Sprintf("receiver answered %d (redirects are not followed)", code)}
	default:
		return code, false, &Error{class: fmt.Sprintf("receiver refused it with %d", code)}
	}
}

func transportRetry(err error) bool {
	var pe *policyError
	return !errors.As(err, &pe)
}

// transportError classifies an error of http.Client.Do. The URL is dropped
// from the cause: it may carry a token and the log has the job id.
func transportError(err error) *Error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	var pe *policyError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return &Error{ClassPolicy, cause}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &Error{ClassTimeout, cause}
	default:
		return &Error{ClassConnection, cause}
	}
}
