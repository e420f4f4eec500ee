package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadClients(t *testing.T) {
	t.Parallel()
	p := write(t, `
[client_vip]
token = "user_token_vip"
plan = "vip"
monthly_attempts = 10000
[client_vip.params]
features = ["all"]

[limited-client]
token = "limited-access-token"
plan = "basic"
monthly_attempts = 2
params = { languages = ["en"], features = ["basic_transcode"] }
`)
	list, tokens, err := LoadClients(p)
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewClients(list, tokens)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := set.Lookup("user_token_vip")
	if !ok || c.Name != "client_vip" || c.Plan != "vip" || c.MonthlyAttempts != 10000 || c.Params["features"].([]any)[0] != "all" {
		t.Fatalf("vip = %+v", c)
	}
	if c, ok := set.Lookup("limited-access-token"); !ok || c.MonthlyAttempts != 2 {
		t.Fatalf("limited = %+v", c)
	}
	for _, bad := range []string{"", "user_token_vi", "user_token_vipx"} {
		if _, ok := set.Lookup(bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func TestLoadClientsErrors(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`[a]` + "\n" + `plan = "x"`:                                      `client "a": token must be`,
		`[a]` + "\n" + `token = "t"` + "\n" + `monthly_attempts = "ten"`: "monthly_attempts must be",
		`[a]` + "\n" + `token = "t"` + "\n" + `params = 3`:               "params must be a table",
		`x = 1`:        `"x" must be a table`,
		`[a] token = `: "parse",
	} {
		_, _, err := LoadClients(write(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), `"t"`) {
			t.Errorf("error leaks a token: %v", err)
		}
	}
	if _, _, err := LoadClients(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := NewClients([]Client{{Name: "a"}, {Name: "b"}}, map[string]string{"a": "same", "b": "same"}); err == nil {
		t.Error("shared token accepted")
	}
}

func TestWorkerTokens(t *testing.T) {
	t.Parallel()
	p := write(t, `
[gpu-worker-01]
token = "super-secret-gpu-worker-token"
description = "ignored"
["cpu-worker-*"]
token = "cpu-fleet-token"
`)
	m, err := LoadWorkers(p)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorkerTokens(m, "global-token")
	for _, tc := range []struct {
		id, token string
		want      error
		key       string
	}{
		{"gpu-worker-01", "super-secret-gpu-worker-token", nil, "super-secret-gpu-worker-token"},
		{"gpu-worker-01", "global-token", ErrInvalidToken, ""}, // an individual token excludes the global one
		{"cpu-worker-07", "cpu-fleet-token", nil, "cpu-fleet-token"},
		{"cpu-worker-07", "global-token", ErrInvalidToken, ""},
		{"someone", "global-token", nil, "global-token"},
		{"someone", "wrong", ErrNoValidToken, ""},
		{"someone", "", ErrMissingToken, ""},
		{"", "global-token", ErrMissingID, ""},
	} {
		err := w.Authenticate(tc.id, tc.token)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.id, tc.token, err, tc.want)
		}
		if err == nil && w.SigningKey(tc.id) != tc.key {
			t.Errorf("%s: signing key %q", tc.id, w.SigningKey(tc.id))
		}
	}
	w.Replace(map[string]string{}, "")
	if err := w.Authenticate("someone", "global-token"); !errors.Is(err, ErrNoValidToken) {
		t.Errorf("global token after disabling it: %v", err)
	}
}

// TestReservedClientNames: the names the orchestrator owns jobs under
// (scheduler, internal) cannot name an API client, from clients.toml or
// from the Go configuration: such a client would read the orchestrator's
// own jobs. The error names the reserved name.
func TestReservedClientNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"scheduler", "internal", "Scheduler", "INTERNAL"} {
		p := write(t, "[ok]\ntoken = \"ok-token\"\n["+name+"]\ntoken = \"its-token\"\n")
		_, _, err := LoadClients(p)
		if err == nil {
			t.Fatalf("clients.toml with a client %q accepted", name)
		}
		reserved := strings.ToLower(name)
		if !strings.Contains(err.Error(), `"`+reserved+`" is reserved`) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the reserved name and the file", name, err)
		}
		if strings.Contains(err.Error(), "its-token") {
			t.Errorf("error leaks a token: %v", err)
		}
		if _, err := NewClients([]Client{{Name: name}}, map[string]string{name: "t"}); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("NewClients with %q: %v", name, err)
		}
	}
	// Names that merely contain a reserved word are fine.
	if _, err := NewClients([]Client{{Name: "scheduler-ui"}, {Name: "internal_tools"}}, map[string]string{"scheduler-ui": "a", "internal_tools": "b"}); err != nil {
		t.Fatal(err)
	}
}
