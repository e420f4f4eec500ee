package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/internal/httpbody"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// DefaultAPIVersion is the API version segment used unless WithAPIVersion
// says otherwise.
const DefaultAPIVersion = "v1"

const (
	userAgent = "avtomatika-go-client"
	// maxResponseBody bounds how much of a successful response is read.
	maxResponseBody = 32 << 20
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
)

// Header values every request shares, never changed: net/http only reads
// a request's headers.
var (
	applicationJSON = []string{"application/json"}
	octetStream     = []string{"application/octet-stream"}
	userAgentHeader = []string{userAgent}
)

// Client talks to the client API of one orchestrator. It is safe for
// concurrent use by multiple goroutines.
type Client struct {
	base  string // scheme://host[/path], no trailing slash
	token string
	// tokenHeader is the X-Client-Token header's value, made once: a
	// request's constant headers are set to shared values, not built.
	tokenHeader []string
	version     string // "" or a cleaned version segment such as "v1"
	hc          *http.Client
}

// Option configures a Client in New.
type Option func(*config)

type config struct {
	hc         *http.Client
	apiVersion string
}

// WithHTTPClient sets the HTTP client that carries requests (default: a
// client without a global timeout; bound calls with their context). The
// client is copied, not modified: New adds a redirect policy that drops the
// client token when a redirect leaves the orchestrator's origin.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) { c.hc = hc }
}

// WithAPIVersion sets the version segment of client routes, /api/{version}/...
// (default "v1"). An empty version addresses the unversioned routes under
// /api/... .
func WithAPIVersion(version string) Option {
	return func(c *config) { c.apiVersion = version }
}

// New returns a client for the orchestrator at baseURL (for example
// "http://localhost:8080"; a path prefix such as "https://host/avtomatika"
// is kept) that authenticates with the client token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	cfg := config{apiVersion: DefaultAPIVersion}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("avtomatika: invalid base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("avtomatika: invalid base URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("avtomatika: invalid base URL %q: no host", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("avtomatika: invalid base URL %q: query and fragment are not allowed", u.Redacted())
	}
	if token == "" {
		return nil, errors.New("avtomatika: a client token is required")
	}
	if !validHeaderValue(token) {
		// Never echo the token itself.
		return nil, errors.New("avtomatika: the client token contains characters not allowed in an HTTP header")
	}
	version := strings.Trim(cfg.apiVersion, "/")
	if strings.Contains(version, "/") || version == "." || version == ".." {
		return nil, fmt.Errorf("avtomatika: invalid API version %q", cfg.apiVersion)
	}
	hc := http.DefaultClient
	if cfg.hc != nil {
		hc = cfg.hc
	}
	return &Client{
		base:  strings.TrimRight(u.String(), "/"),
		token: token, tokenHeader: []string{token},
		version: version,
		hc:      withTokenSafeRedirects(hc),
	}, nil
}

// String describes the client without its token.
func (c *Client) String() string {
	return fmt.Sprintf("client.Client{base: %q, api_version: %q}", c.redactedBase(), c.version)
}

// GoString is String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

func (c *Client) redactedBase() string {
	if u, err := url.Parse(c.base); err == nil {
		return u.Redacted()
	}
	return ""
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

// withTokenSafeRedirects returns a copy of hc whose redirect policy removes
// the client token from a redirected request that leaves the original origin
// (scheme and host). net/http only does that for its own sensitive headers,
// not for X-Client-Token.
func withTokenSafeRedirects(hc *http.Client) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 {
			first := via[0].URL
			if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
				req.Header.Del(protocol.HeaderClientToken)
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// apiPath returns /api[/{version}] followed by the already escaped rest.
func (c *Client) apiPath(rest string) string {
	p := protocol.ClientPrefix
	if c.version != "" {
		p += "/" + url.PathEscape(c.version)
	}
	return p + rest
}

// request describes one call.
type request struct {
	method string
	path   string // escaped, relative to base
	query  url.Values
	body   any  // JSON-encoded when non-nil
	public bool // no client token
	accept string
	// raw, when set, is sent as it is (application/octet-stream) instead
	// of body; rawSize is its length, or -1 when unknown.
	raw     io.Reader
	rawSize int64
	header  http.Header // extra headers
}

// send performs the request and returns the response for a 2xx status. For
// any other status it reads the body and returns an *Error. The caller
// closes the body of a returned response.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", ErrInvalid)
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	if r.raw != nil {
		body = r.raw
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header["Content-Type"] = applicationJSON
	}
	if r.raw != nil {
		req.Header["Content-Type"] = octetStream
		req.ContentLength = r.rawSize
		if r.rawSize == 0 {
			req.Body = http.NoBody
		}
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	} else {
		req.Header["Accept"] = applicationJSON
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header["User-Agent"] = userAgentHeader
	if !r.public {
		req.Header[protocol.HeaderClientToken] = c.tokenHeader
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // *url.Error: method and URL, never headers
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer closeBody(resp.Body)
	return nil, errorFromResponse(resp)
}

// call performs the request and decodes a JSON response into out (when
// out is non-nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	b, err := readLimited(resp, maxResponseBody)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
	}
	return nil
}

// readLimited reads resp's body, refusing one over limit bytes.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	b, err := httpbody.Read(io.LimitReader(resp.Body, limit+1), resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read response: body larger than %d bytes", limit)
	}
	return b, nil
}

// closeBody drains a little of what is left so the connection can be reused.
func closeBody(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 4<<10))
	_ = rc.Close()
}

// segment escapes one path segment and refuses values that would change
// the route: empty, "." and "..".
func segment(what, v string) (string, error) {
	switch v {
	case "":
		return "", fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case ".", "..":
		return "", fmt.Errorf("%w: %s %q cannot be used in a URL path", ErrInvalid, what, v)
	}
	return url.PathEscape(v), nil
}

// wrap adds the operation to an error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("avtomatika: %s: %w", op, err)
}
