package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	netErr := &url.Error{Op: "Get", URL: "http://x/api/v1/jobs/1", Err: errors.New("connection reset by peer")}
	cases := []struct {
		name  string
		err   error
		delay time.Duration
		ok    bool
	}{
		{"network", fmt.Errorf("wrapped: %w", netErr), 0, true},
		{"503", &Error{StatusCode: 503}, 0, true},
		{"500", &Error{StatusCode: 500}, 0, true},
		{"503 with Retry-After", &Error{StatusCode: 503, RetryAfter: 3 * time.Second}, 3 * time.Second, true},
		{"501", &Error{StatusCode: 501}, 0, false},
		{"429 short", &Error{StatusCode: 429, RetryAfter: 2 * time.Second}, 2 * time.Second, true},
		{"429 no Retry-After", &Error{StatusCode: 429}, 0, false},
		{"429 long", &Error{StatusCode: 429, RetryAfter: 2 * time.Hour}, 0, false},
		{"404", &Error{StatusCode: 404}, 0, false},
		{"decode", errors.New("decode 200 response: invalid character"), 0, false},
	}
	for _, tc := range cases {
		d, ok := transient(tc.err)
		if d != tc.delay || ok != tc.ok {
			t.Errorf("%s: transient = %v, %v; want %v, %v", tc.name, d, ok, tc.delay, tc.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cases := []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{10 * ms, 1, 10 * ms},
		{10 * ms, 2, 20 * ms},
		{10 * ms, 4, 80 * ms},
		{10 * ms, 50, maxBackoff},
		{time.Second, 1000, maxBackoff},
		{time.Minute, 3, time.Minute},
	}
	for _, tc := range cases {
		if got := backoff(tc.interval, tc.failures); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                     0,
		"0":                    0,
		"-5":                   0,
		"120":                  2 * time.Minute,
		" 3 ":                  3 * time.Second,
		"soon":                 0,
		"1.5":                  0,
		"9223372036854775807":  time.Duration(1<<63-1) / time.Second * time.Second,
		"99999999999999999999": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body, want string
	}{
		{`{"error":"Job not found"}`, "Job not found"},
		{`{"error":{"code":"X","detail":"y"}}`, `{"code":"X","detail":"y"}`},
		{`{"error":"","message":"fallback"}`, "fallback"},
		{`{"status":"error","message":"bad payload"}`, "bad payload"},
		{`  some text  `, "some text"},
		{"", "Bad Gateway"},
		{"\xff\xfe broken", "\uFFFD broken"},
		{`null`, "null"},
		{`[1,2]`, "[1,2]"},
	}
	for _, tc := range cases {
		if got := errorMessage(http.StatusBadGateway, []byte(tc.body)); got != tc.want {
			t.Errorf("errorMessage(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestSegmentAndEndpoint(t *testing.T) {
	t.Parallel()
	if s, err := segment("job id", "a/b?c#d e%"); err != nil || s != "a%2Fb%3Fc%23d%20e%25" {
		t.Errorf("segment = %q, %v", s, err)
	}
	if p, err := endpointPath("jobs/with space"); err != nil || p != "/jobs/with%20space" {
		t.Errorf("endpointPath = %q, %v", p, err)
	}
}

// FuzzErrorMessage: any error body gives a short, valid UTF-8 message
// without panicking.
func FuzzErrorMessage(f *testing.F) {
	for _, s := range []string{`{"error":"x"}`, `{"error":1}`, `{"message":"m"}`, "<html></html>", "", "\xff", strings.Repeat("ü", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		msg := errorMessage(500, []byte(body))
		if !utf8.ValidString(msg) {
			t.Fatalf("invalid UTF-8 message %q", msg)
		}
		if len(msg) > maxMessage+len("…") {
			t.Fatalf("message of %d bytes", len(msg))
		}
		if msg == "" {
			t.Fatal("empty message")
		}
	})
}
