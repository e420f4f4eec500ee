package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip      string
		refused bool
	}{
		// IPv4
		{"127.0.0.1", true}, {"127.255.255.254", true}, {"0.0.0.0", true}, {"0.1.2.3", true},
		{"10.0.0.1", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"100.64.0.1", true}, {"100.127.255.255", true}, {"224.0.0.1", true},
		{"239.255.255.250", true}, {"255.255.255.255", true}, {"240.0.0.1", true}, {"192.0.2.10", true},
		{"198.18.0.1", true}, {"198.51.100.1", true}, {"203.0.113.5", true}, {"192.0.0.8", true},
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"172.32.0.1", false}, {"172.15.255.255", false},
		{"100.63.255.255", false}, {"100.128.0.0", false}, {"169.253.0.1", false}, {"192.169.0.1", false},
		{"11.0.0.1", false}, {"223.255.255.255", false},
		// IPv6
		{"::", true}, {"::1", true}, {"fe80::1", true}, {"fe80::1%eth0", true}, {"febf::1", true},
		{"fc00::1", true}, {"fd12:3456::1", true}, {"ff02::1", true}, {"ff05::2", true}, {"fec0::1", true},
		{"2001:db8::1", true}, {"2001::1", true}, {"100::1", true}, {"64:ff9b:1::1", true}, {"::2", true},
		{"4000::1", true}, {"3fff::1", true},
		{"2606:4700:4700::1111", false}, {"2a00:1450:4001::1", false}, {"2001:4860:4860::8888", false},
		// IPv4 in IPv6 forms
		{"::ffff:127.0.0.1", true}, {"::ffff:7f00:1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:169.254.169.254", true},
		{"::ffff:0.0.0.0", true}, {"::ffff:8.8.8.8", false}, {"::127.0.0.1", true}, {"::ffff:0:127.0.0.1", true},
		{"64:ff9b::127.0.0.1", true}, {"64:ff9b::10.1.2.3", true}, {"64:ff9b::8.8.8.8", false},
		{"2002:7f00:1::1", true}, {"2002:a9fe:a9fe::1", true}, {"2002:0808:0808::1", false},
	} {
		why := classify(netip.MustParseAddr(tc.ip))
		if (why != "") != tc.refused {
			t.Errorf("classify(%s) = %q, want refused %v", tc.ip, why, tc.refused)
		}
	}
	if classify(netip.Addr{}) == "" {
		t.Error("the zero address is allowed")
	}
}

func TestParseAllowedHosts(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"":                                   nil,
		" , ,":                               nil,
		"127.0.0.1/32,receiver.internal":     {"127.0.0.1/32", "receiver.internal"},
		" 10.1.2.3 , Receiver.Internal. ":    {"10.1.2.3/32", "receiver.internal"},
		"10.1.2.3/8,fd00::/8,[::1],::1":      {"10.0.0.0/8", "fd00::/8", "::1/128", "::1/128"},
		"::ffff:10.0.0.0/104,::ffff:1.2.3.4": {"10.0.0.0/8", "1.2.3.4/32"},
		"webhook-receiver,a_b.c-d.example":   {"webhook-receiver", "a_b.c-d.example"},
	} {
		got, err := ParseAllowedHosts(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseAllowedHosts(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"http://receiver.internal", "receiver.internal:8443", "[::1]:80", "10.0.0.0/33", "10.0.0.0/x", "*.internal",
		"fe80::1%eth0", "-bad.example", "a..b", "999.1.1.1", "127.1", "0x7f.1", "résumé.example", "a b", "ok,bad host",
		strings.Repeat("a", 64) + ".example",
	} {
		if got, err := ParseAllowedHosts(in); err == nil || !strings.Contains(err.Error(), "bad allow-list entry") {
			t.Errorf("ParseAllowedHosts(%q) = %q, %v; want an error", in, got, err)
		}
	}
}

func FuzzParseAllowedHosts(f *testing.F) {
	for _, s := range []string{"", "127.0.0.1/32,receiver.internal", "::ffff:10.0.0.0/104", "[::1]", "a.b.", "10.0.0.1/8,x", "fe80::1%lo", "1.2.3.4:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := ParseAllowedHosts(s)
		if err != nil {
			if entries != nil {
				t.Fatalf("entries %q with error %v", entries, err)
			}
			return
		}
		// Canonical entries parse to themselves, and a sender takes them.
		again, err := ParseAllowedHosts(strings.Join(entries, ","))
		if err != nil || !slices.Equal(again, entries) {
			t.Fatalf("%q: canonical %q parses to %q, %v", s, entries, again, err)
		}
		if _, err := newAllowList(entries); err != nil {
			t.Fatalf("%q: allow-list of %q: %v", s, entries, err)
		}
		for _, e := range entries {
			if e == "" || strings.ContainsAny(e, ", \t\n") {
				t.Fatalf("%q: entry %q", s, e)
			}
		}
	})
}

// fakeResolver answers from a map; other names do not exist.
type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := r[normalizeName(host)]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

// receiver is a loopback webhook endpoint counting its requests.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var payload = protocol.WebhookPayload{Event: "job_finished", JobID: "j1", Status: "finished", Attempt: 1}

func class(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	return e.Class()
}

func TestDeliverRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	s := New(Options{Timeout: 2 * time.Second})
	ctx := context.Background()
	for _, u := range []string{
		srv.URL, "http://localhost:" + strconv.Itoa(port), "http://[::1]:" + strconv.Itoa(port), "http://0.0.0.0:" + strconv.Itoa(port),
		"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port), "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
		"https://192.168.1.1/", "http://100.64.0.1/", "http://[fd00::1]/", "http://[fe80::1%25eth0]/", "http://224.0.0.1/",
		"http://[64:ff9b::7f00:1]/", "ftp://example.com/hook", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
	} {
		status, retry, err := s.Deliver(ctx, u, payload)
		if status != 0 || retry || class(err) != ClassPolicy || err.Error() != ClassPolicy {
			t.Errorf("%s: status %d retry %v err %v, want refused by the policy", u, status, retry, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	for _, u := range []string{"", "/hook", "http://", "http://:80/x", "::"} {
		if _, retry, err := s.Deliver(ctx, u, payload); retry || class(err) != ClassBadURL {
			t.Errorf("%q: retry %v err %v, want %q", u, retry, err, ClassBadURL)
		}
	}
}

func TestDeliverAllowList(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, nil)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	for _, tc := range []struct {
		allow []string
		url   string
		ok    bool
	}{
		{[]string{"127.0.0.1/32"}, srv.URL, true},
		{[]string{"127.0.0.0/8"}, "http://localhost:" + port + "/hook", true}, // an allowed address, by any name
		{[]string{"localhost"}, "http://LOCALHOST.:" + port + "/hook", true},  // an allowed name, to any address
		{[]string{"receiver.internal"}, "http://receiver.internal:" + port + "/hook", true},
		{[]string{"127.0.0.2/32", "other.internal"}, srv.URL, false},
		{[]string{"10.0.0.0/8"}, "http://receiver.internal:" + port + "/hook", false},
		{nil, "http://receiver.internal:" + port + "/hook", false},
	} {
		s := New(Options{AllowedHosts: tc.allow, Timeout: 2 * time.Second,
			Resolver: fakeResolver{"receiver.internal": {"127.0.0.1"}, "localhost": {"127.0.0.1"}}})
		before := hits.Load()
		status, retry, err := s.Deliver(ctx, tc.url, payload)
		if tc.ok && (status != 200 || err != nil || hits.Load() != before+1) {
			t.Errorf("allow %q, %s: status %d err %v, want delivered", tc.allow, tc.url, status, err)
		}
		if !tc.ok && (status != 0 || retry || class(err) != ClassPolicy || hits.Load() != before) {
			t.Errorf("allow %q, %s: status %d retry %v err %v, want refused", tc.allow, tc.url, status, retry, err)
		}
	}
	// The real resolver: "localhost" is loopback, refused unless allowed.
	url := "http://localhost:" + port + "/hook"
	if _, _, err := New(Options{}).Deliver(ctx, url, payload); class(err) != ClassPolicy {
		t.Errorf("%s without an allow-list: %v", url, err)
	}
	if status, _, err := New(Options{AllowedHosts: []string{"localhost"}}).Deliver(ctx, url, payload); status != 200 || err != nil {
		t.Errorf("%s allowed by name: %d %v", url, status, err)
	}
}

// A name that resolves to an internal address, even alongside a public
// one, is refused before anything is dialled (DNS rebinding).
func TestDeliverRefusesNamesResolvingInside(t *testing.T) {
	t.Parallel()
	s := New(Options{Resolver: fakeResolver{
		"rebind.example": {"203.0.113.7"}, "mixed.example": {"8.8.8.8", "10.0.0.1"}, "mapped.example": {"::ffff:127.0.0.1"},
		"metadata.example": {"169.254.169.254"}, "v6.example": {"fe80::1%eth0"},
	}})
	for _, host := range []string{"rebind.example", "mixed.example", "mapped.example", "metadata.example", "v6.example"} {
		status, retry, err := s.Deliver(context.Background(), "http://"+host+"/hook", payload)
		var pe *policyError
		if status != 0 || retry || class(err) != ClassPolicy || !errors.As(err, &pe) {
			t.Errorf("%s: status %d retry %v err %v, want refused", host, status, retry, err)
		}
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	target, targetHits := receiver(t, nil)
	for _, code := range []int{301, 302, 303, 307, 308} {
		src, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", code)
		})
		s := New(Options{AllowedHosts: []string{"127.0.0.1"}, Secret: "secret"})
		status, retry, err := s.Deliver(context.Background(), src.URL, payload)
		if status != code || retry || err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("%d: status %d retry %v err %v", code, status, retry, err)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
}

// The history (the error's message, the status, the retry decision) must
// not tell a closed port, an unknown host and a port that does not speak
// HTTP apart; the server's log keeps the cause.
func TestDeliverFailuresLookAlike(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/hook"
	closed.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 512))
			_, _ = c.Write([]byte("-ERR unknown command\r\n"))
			c.Close()
		}
	}()
	s := New(Options{AllowedHosts: []string{"127.0.0.1/32", "nowhere.invalid"}, Timeout: 2 * time.Second, Resolver: fakeResolver{}})
	type outcome struct {
		status int
		retry  bool
		msg    string
	}
	var first outcome
	causes := map[string]bool{}
	for i, u := range []string{closedURL, "http://nowhere.invalid/hook", "http://" + other.Addr().String() + "/hook"} {
		status, retry, err := s.Deliver(context.Background(), u, payload)
		if err == nil {
			t.Fatalf("%s: delivered", u)
		}
		got := outcome{status, retry, err.Error()}
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%s: %+v, but %+v for a closed port", u, got, first)
		}
		if cause := errors.Unwrap(err); cause == nil || strings.Contains(cause.Error(), u) {
			t.Errorf("%s: cause %v (want one, without the URL)", u, cause)
		} else {
			causes[cause.Error()] = true
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Warn("webhook attempt failed", "error", err)
		var rec struct{ Error string }
		if jerr := json.Unmarshal(buf.Bytes(), &rec); jerr != nil || rec.Error != err.Error()+": "+errors.Unwrap(err).Error() {
			t.Errorf("%s: the log %s lacks the cause (%v)", u, buf.String(), jerr)
		}
	}
	if first != (outcome{0, true, ClassConnection}) {
		t.Errorf("closed port: %+v", first)
	}
	if len(causes) != 3 {
		t.Errorf("the causes should differ for the log: %v", causes)
	}
}

func TestDeliverTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := receiver(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	s := New(Options{AllowedHosts: []string{"127.0.0.1"}, Timeout: 200 * time.Millisecond})
	status, retry, err := s.Deliver(context.Background(), srv.URL, payload)
	if status != 0 || !retry || class(err) != ClassTimeout {
		t.Fatalf("status %d retry %v err %v", status, retry, err)
	}
}

func TestBadAllowListRefusesEverything(t *testing.T) {
	t.Parallel()
	srv, hits := receiver(t, nil)
	s := New(Options{AllowedHosts: []string{"127.0.0.1/32", "not a host"}})
	status, retry, err := s.Deliver(context.Background(), srv.URL, payload)
	if status != 0 || retry || class(err) != ClassPolicy || !strings.Contains(errors.Unwrap(err).Error(), "not a host") || hits.Load() != 0 {
		t.Fatalf("status %d retry %v err %v (%v)", status, retry, err, errors.Unwrap(err))
	}
}

// The URL, which may carry a token, stays out of the cause.
func TestCauseOmitsTheURL(t *testing.T) {
	t.Parallel()
	s := New(Options{AllowedHosts: []string{"127.0.0.1"}, Resolver: fakeResolver{}})
	u := "http://nowhere.invalid/hook?token=s3cr3t"
	_, _, err := s.Deliver(context.Background(), u, payload)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(errors.Unwrap(err).Error(), "s3cr3t") {
		t.Fatalf("err %v cause %v", err, errors.Unwrap(err))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Fatalf("the cause keeps the *url.Error: %v", ue)
	}
}
