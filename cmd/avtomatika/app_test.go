package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t.Context(), nil, "version")
	mustCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "avtomatika dev (go") {
		t.Errorf("version output: %s", r)
	}
	r = runCLI(t.Context(), nil, "version", "--json")
	mustCode(t, r, 0)
	if v := decodeJSON[map[string]string](t, r); v["version"] != "dev" || !strings.HasPrefix(v["go"], "go") {
		t.Errorf("version JSON: %v", v)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"help"}, {"-h"}, {"--help"},
		{"help", "jobs"}, {"jobs", "-h"}, {"jobs", "help"},
		{"help", "jobs", "create"}, {"jobs", "help", "create"}, {"jobs", "create", "-h"}, {"jobs", "create", "/x", "--help"},
		{"help", "blueprints", "graph"}, {"blueprints", "graph", "-h"}, {"version", "-h"},
		{"workers", "list", "-h"}, {"jobs", "list", "-h"}, {"jobs", "approve", "-h"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t.Context(), nil, args...)
			mustCode(t, r, 0)
			if r.stderr != "" || !strings.Contains(r.stdout, "Usage") {
				t.Errorf("no usage on stdout: %s", r)
			}
		})
	}

	r := runCLI(t.Context(), nil, "help")
	for _, want := range []string{"jobs create ENDPOINT", "jobs approve ID DECISION", "blueprints graph NAME",
		"ORCHESTRATOR_URL", "CLIENT_TOKEN", "Exit status", "6    jobs watch", "130"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("main usage lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t.Context(), nil, "jobs", "create", "-h")
	for _, want := range []string{"Usage: avtomatika jobs create ENDPOINT [flags]", "--data JSON", "--webhook URL", "--watch", "--poll"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("jobs create usage lacks %q:\n%s", want, r.stdout)
		}
	}
	// A token in the environment never shows in a usage text.
	r = runCLI(t.Context(), func(k string) string { return map[string]string{envToken: "s3cret"}[k] }, "jobs", "get", "-h")
	if strings.Contains(r.stdout, "s3cret") {
		t.Errorf("usage shows the token:\n%s", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{args: nil, want: "no command given"},
		{args: []string{"frobnicate"}, want: `unknown command "frobnicate"`},
		{args: []string{"--nope", "version"}, want: "avtomatika: unknown flag --nope\n"},
		{args: []string{"jobs", "--nope", "list"}, want: "avtomatika jobs: unknown flag --nope\n"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data"}, want: "avtomatika jobs create: --data needs a value\n"},
		{args: []string{"jobs", "list", "--limit", "ten"}, want: `avtomatika jobs list: --limit: "ten" is not a whole number` + "\n"},
		{args: []string{"jobs", "list", "--all=maybe"}, want: `avtomatika jobs list: --all: "maybe" is not true or false` + "\n"},
		{args: []string{"jobs", "list", "--timeout", "5"}, want: `avtomatika jobs list: --timeout: "5" is not a duration, e.g. 500ms, 2s or 1m` + "\n"},
		{args: []string{"jobs"}, want: "missing subcommand"},
		{args: []string{"jobs", "frobnicate"}, want: `unknown subcommand "frobnicate"`},
		{args: []string{"help", "frobnicate"}, want: `unknown command "frobnicate"`},
		{args: []string{"jobs", "get"}, want: "missing arguments: want ID"},
		{args: []string{"jobs", "get", "a", "b"}, want: `unexpected argument "b"`},
		{args: []string{"jobs", "approve", "a"}, want: "want ID DECISION"},
		{args: []string{"workers", "list", "x"}, want: "takes none"},
		{args: []string{"jobs", "create", "/jobs/quick", "--nope"}, want: "unknown flag --nope"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", "[1]"}, want: `--data must be a JSON object, e.g. '{"quality":"low"}', not an array`},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", `"low"`}, want: `--data must be a JSON object, e.g. '{"quality":"low"}', not a string`},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", "null"}, want: "not null"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", "{bad"}, want: "--data is not valid JSON (invalid character 'b' looking for beginning of object key string, at byte 2)"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", `{"a":`}, want: "--data is not valid JSON (it ends too early)"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", " "}, want: "--data is empty"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", "{} {}"}, want: "--data must be one JSON object, e.g. '{\"quality\":\"low\"}', with nothing after it"},
		{args: []string{"jobs", "create", "/jobs/quick", "--data", "@/no/such/file.json"}, want: "--data @/no/such/file.json: no such file or directory\n"},
		{args: []string{"jobs", "get", ""}, want: "jobs get: empty ID"},
		{args: []string{"jobs", "approve", "x", " "}, want: "jobs approve: empty DECISION"},
		{args: []string{"jobs", "create", ""}, want: "jobs create: empty ENDPOINT"},
		{args: []string{"jobs", "create", "child"}, want: `blueprint "child" has no endpoint`},
		{args: []string{"jobs", "watch", "x", "--poll", "0s"}, want: "--poll must be positive"},
		{args: []string{"jobs", "watch", "x", "--poll", "soon"}, want: `--poll: "soon" is not a duration, e.g. 500ms, 2s or 1m`},
		{args: []string{"jobs", "list", "--limit", "-1"}, want: "--limit must be between"},
		{args: []string{"jobs", "list", "--limit", "501"}, want: "--limit must be between"},
		{args: []string{"jobs", "list", "--status", "bogus"}, want: `unknown status "bogus"`},
		{args: []string{"jobs", "get", "x", "--fields", "status,bogus"}, want: `unknown field "bogus"`},
		{args: []string{"blueprints", "graph", "quick", "--format", "png"}, want: `unknown format "png"`},
		{args: []string{"jobs", "get", "x"}, env: []string{envToken + "="}, want: "no client token"},
		{args: []string{"jobs", "get", "x", "--url", "ftp://host"}, want: "scheme must be http or https (--url or ORCHESTRATOR_URL is the orchestrator's root URL, e.g. http://localhost:8080)"},
		{args: []string{"jobs", "get", "x", "--timeout", "-1s"}, want: "--timeout must not be negative"},
		{args: []string{"jobs", "get", "x", "--api-version", "a/b"}, want: "invalid API version"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t.Context(), s.env(tt.env...), tt.args...)
			mustCode(t, r, 2)
			if !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "Run 'avtomatika help") {
				t.Errorf("stderr lacks %q and the help hint: %s", tt.want, r)
			}
			if goTypes.MatchString(r.stderr) {
				t.Errorf("stderr names a Go type: %s", r)
			}
			if tt.args != nil && r.stdout != "" {
				t.Errorf("stdout not empty: %s", r)
			}
		})
	}
}

// goTypes matches what Go's own messages say of its types.
var goTypes = regexp.MustCompile(`map\[|interface \{|\[\]|Go value|Go struct|\*[a-z]+\.[A-Z]`)

func TestWrongToken(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, args := range [][]string{
		{"jobs", "list", "--token", "wrong"},
		{"--token=wrong", "workers", "list"},
		{"jobs", "create", "/jobs/quick", "--token", "wrong"},
	} {
		r := s.cli(t, args...)
		mustCode(t, r, 4)
		want := "the orchestrator refused the client token given with --token (401: Invalid token): " +
			"pass a token from the orchestrator's clients.toml with --token (or set CLIENT_TOKEN)\n"
		if !strings.Contains(r.stderr, want) || strings.Count(strings.ToLower(r.stderr), "unauthorized") > 0 {
			t.Errorf("stderr lacks %q: %s", want, r)
		}
	}
	// A token from the environment: the message names the variable.
	r := runCLI(t.Context(), s.env(envToken+"=wrong"), "jobs", "list")
	mustCode(t, r, 4)
	want := "avtomatika: list jobs: the orchestrator refused the client token in CLIENT_TOKEN (401: Invalid token): " +
		"set CLIENT_TOKEN (or --token) to a token from the orchestrator's clients.toml\n"
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	// The flag wins over the environment.
	r = runCLI(t.Context(), s.env(envToken+"=wrong"), "jobs", "list", "--token", token)
	mustCode(t, r, 0)
}

// A URL that is not the orchestrator's root gives a 404 that says so.
func TestWrongURL(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, base := range []string{s.url + "/api/v1", s.url + "/api/v1/", s.url + "/api"} {
		for _, args := range [][]string{
			{"jobs", "list"}, {"jobs", "get", "x"}, {"workers", "list"}, {"jobs", "create", "/jobs/quick"}, {"jobs", "create", "quick"},
		} {
			r := runCLI(t.Context(), s.env(envURL+"="+base), args...)
			mustCode(t, r, 3)
			want := "404 Not Found: the orchestrator URL " + base + " ends in an API path, but --url (or ORCHESTRATOR_URL) " +
				"takes the orchestrator's root: use " + s.url + " (the command adds /api/v1 itself)\n"
			if !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "no blueprint") {
				t.Errorf("%s %v: stderr lacks %q: %s", base, args, want, r)
			}
		}
	}
	// Elsewhere: no route under /api/v1 there.
	for _, args := range [][]string{
		{"jobs", "list", "--url", s.url + "/elsewhere"},
		{"jobs", "create", "/jobs/quick", "--url", s.url + "/elsewhere"},
		{"jobs", "list", "--api-version", "v9"},
	} {
		r := s.cli(t, args...)
		mustCode(t, r, 3)
		if !strings.Contains(r.stderr, "404 Not Found: the server at http://") || !strings.Contains(r.stderr, "has no route under /api/v") ||
			!strings.Contains(r.stderr, "takes the orchestrator's root, e.g. http://localhost:8080") || strings.Contains(r.stderr, "page not found") {
			t.Errorf("%v: %s", args, r)
		}
	}
	// The right URL with a slash works.
	mustCode(t, s.cli(t, "jobs", "list", "--url", s.url+"/"), 0)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "get", "no-such-job"}, "404 Not Found: Job not found"},
		{[]string{"jobs", "watch", "no-such-job"}, "404 Not Found: Job not found"},
		{[]string{"jobs", "cancel", "no-such-job"}, "404 Not Found: Job not found"},
		{[]string{"jobs", "approve", "no-such-job", "approved"}, "404 Not Found: Job not found"},
		{[]string{"jobs", "create", "/jobs/no-such-endpoint"}, `create job at "/jobs/no-such-endpoint": no blueprint serves this endpoint (404); "avtomatika blueprints list" shows the endpoints` + "\n"},
		{[]string{"jobs", "create", "/elsewhere"}, `create job at "/elsewhere": no blueprint serves this endpoint (404); "avtomatika blueprints list"`},
		{[]string{"jobs", "create", "no-such-name"}, `create job at "no-such-name": no blueprint serves this endpoint (404)`},
		{[]string{"blueprints", "graph", "no-such-blueprint"}, "404 Not Found: Blueprint not found"},
	} {
		r := s.cli(t, tt.args...)
		mustCode(t, r, 3)
		if !strings.Contains(r.stderr, tt.want) {
			t.Errorf("stderr lacks %q: %s", tt.want, r)
		}
	}
	// Another client's job does not exist for this one.
	id := s.create(t, "/jobs/quick")
	r := runCLI(t.Context(), s.env(envToken+"="+otherToken), "jobs", "get", id)
	mustCode(t, r, 3)
	if !strings.Contains(r.stderr, "Job not found") {
		t.Errorf("stderr lacks the server's message: %s", r)
	}
}

func TestQuotaExhausted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	env := s.env(envToken + "=" + cappedToken)
	mustCode(t, runCLI(t.Context(), env, "jobs", "create", "/jobs/quick"), 0)
	r := runCLI(t.Context(), env, "jobs", "create", "/jobs/quick")
	mustCode(t, r, 5)
	if !strings.Contains(r.stderr, "429 Too Many Requests") {
		t.Errorf("stderr: %s", r)
	}
}

func TestServerAndNetworkErrors(t *testing.T) {
	t.Parallel()
	// An orchestrator that is not started answers 503.
	o, err := orchestrator.New(orchestrator.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Clients: []orchestrator.Client{{Name: "tester", Token: token}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o.Handler())
	r := runCLI(t.Context(), (&testServer{url: srv.URL}).env(), "jobs", "list")
	mustCode(t, r, 1)
	if !strings.Contains(r.stderr, "503 Service Unavailable: the orchestrator is not started") {
		t.Errorf("stderr: %s", r)
	}

	srv.Close() // nothing listens any more
	r = runCLI(t.Context(), (&testServer{url: srv.URL}).env(), "jobs", "list")
	mustCode(t, r, 1)
	if !strings.Contains(r.stderr, "connection refused (is the orchestrator running at "+srv.URL+"? --url or ORCHESTRATOR_URL says where it is)") {
		t.Errorf("stderr: %s", r)
	}
}

func TestGlobalFlagsAnywhere(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/quick")
	for _, args := range [][]string{
		{"--json", "jobs", "get", id},
		{"jobs", "--json", "get", id},
		{"jobs", "get", "--json", id},
		{"jobs", "get", id, "--json"},
		{"--url", "http://127.0.0.1:1", "jobs", "get", id, "--json", "--url", s.url},
	} {
		r := s.cli(t, args...)
		mustCode(t, r, 0)
		if j := decodeJSON[map[string]any](t, r); j["id"] != id {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	fs := newFlagSet("test")
	b := fs.Bool("b", false, "")
	v := fs.String("v", "", "")
	pos, err := parseInterleaved(fs, []string{"one", "-b", "two", "-v", "x", "--", "-three", "-b"})
	if err != nil {
		t.Fatal(err)
	}
	if !*b || *v != "x" || !slices.Equal(pos, []string{"one", "two", "-three", "-b"}) {
		t.Errorf("b=%v v=%q pos=%q", *b, *v, pos)
	}
	if _, err := parseInterleaved(newFlagSet("test"), []string{"-h"}); err != flag.ErrHelp {
		t.Errorf("-h: %v", err)
	}
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	id := s.create(t, "/jobs/review")
	s.waitStatus(t, id, "waiting_for_human")
	ctx, cancel := context.WithCancel(t.Context())
	watch := s.cliAsync(ctx, "jobs", "watch", id, fastPoll)
	watch.waitStdout(t, "WAITING_FOR_HUMAN")
	cancel()
	r := watch.wait()
	mustCode(t, r, 130)
	if !strings.Contains(r.stderr, "stopped following job "+id+", which keeps running") {
		t.Errorf("stderr: %s", r)
	}
}
