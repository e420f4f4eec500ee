package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. An *Error matches the sentinel of its status code with
// errors.Is; ErrInvalid also marks arguments the client refuses before
// sending anything (an empty job id, for example).
var (
	ErrInvalid      = errors.New("invalid request")   // 400, 422, and arguments refused locally
	ErrUnauthorized = errors.New("unauthorized")      // 401: missing or unknown client token
	ErrForbidden    = errors.New("forbidden")         // 403
	ErrNotFound     = errors.New("not found")         // 404: no such job (or another client's), blueprint or route
	ErrConflict     = errors.New("conflict")          // 409: e.g. the job is not waiting for approval
	ErrTooLarge     = errors.New("request too large") // 413
	ErrRateLimited  = errors.New("too many requests") // 429: rate limited or quota exhausted; see Error.RetryAfter
	ErrServer       = errors.New("server error")      // 5xx
)

// Error is a non-2xx answer of the orchestrator.
type Error struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Message is the server's explanation: the "error" member of a JSON
	// body, else the (trimmed, shortened) body text, else the status text.
	Message string
	// RetryAfter is the delay the server asked for in Retry-After (429 and
	// 503 answers), zero when absent.
	RetryAfter time.Duration
}

// Error returns the status and the server's message, e.g.
// "404 Not Found: Job not found". What the message only repeats of the
// status is left out: "401 Unauthorized: Invalid token" for the message
// "Unauthorized: Invalid token", and "404 Not Found" for net/http's
// "404 page not found".
func (e *Error) Error() string {
	status := strconv.Itoa(e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		status += " " + t
	}
	s := status
	if msg := e.Detail(); msg != "" {
		s += ": " + msg
	}
	if e.RetryAfter > 0 {
		s += " (retry after " + shortDuration(e.RetryAfter) + ")"
	}
	return s
}

// shortDuration writes d to the second without zero units: 30s, 1m, 1h5m.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Detail is the server's message without the status code or status text
// it starts with, or empty when nothing else is left: "Invalid token" for
// "Unauthorized: Invalid token", "" for net/http's "404 page not found".
func (e *Error) Detail() string {
	msg := strings.TrimSpace(e.Message)
	if rest, ok := cutWord(msg, strconv.Itoa(e.StatusCode), " :"); ok {
		msg = rest
	}
	text := http.StatusText(e.StatusCode)
	if rest, ok := cutWord(msg, text, ":"); ok && text != "" {
		msg = rest
	}
	// net/http's NotFound answers "404 page not found": an unknown route.
	if e.StatusCode == http.StatusNotFound && strings.EqualFold(msg, "page not found") {
		msg = ""
	}
	return msg
}

// cutWord removes prefix (compared without case) from s when it is all of
// s or is followed by one of the separators, and trims the separators and
// spaces that follow it.
func cutWord(s, prefix, separators string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	rest := s[len(prefix):]
	if rest != "" && !strings.ContainsRune(separators, rune(rest[0])) {
		return s, false
	}
	return strings.TrimLeft(rest, ": "), true
}

// Is reports whether target is the sentinel error of e's status code, so
// that errors.Is(err, ErrNotFound) holds for a wrapped 404.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500 && e.StatusCode < 600
	}
	return false
}

// maxMessage bounds the length of a message taken from a non-JSON body.
const maxMessage = 512

// errorFromResponse builds an *Error from a non-2xx response; it reads at
// most maxErrorBody bytes of the body.
func errorFromResponse(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a partial body still helps
	return &Error{
		StatusCode: resp.StatusCode,
		Message:    errorMessage(resp.StatusCode, b),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// errorMessage extracts the server's message from an error body.
func errorMessage(status int, body []byte) string {
	var obj struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &obj) == nil {
		switch v := obj.Error.(type) {
		case string:
			if v = strings.TrimSpace(v); v != "" {
				return shorten(v)
			}
		case nil:
		default:
			if b, err := json.Marshal(v); err == nil {
				return shorten(string(b))
			}
		}
		if m := strings.TrimSpace(obj.Message); m != "" {
			return shorten(m)
		}
	}
	if text := strings.Join(strings.Fields(string(body)), " "); text != "" {
		return shorten(text)
	}
	return http.StatusText(status)
}

// shorten cuts s to maxMessage bytes on a rune boundary and replaces
// invalid UTF-8.
func shorten(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// Anything else, and dates in the past, give zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64((1<<63 - 1) / int64(time.Second))
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
