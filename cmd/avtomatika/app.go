package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
)

const (
	defaultURL     = "http://localhost:8080"
	defaultTimeout = 30 * time.Second
	envURL         = "ORCHESTRATOR_URL"
	envToken       = "CLIENT_TOKEN"
)

// globals are the flags every command accepts, before the command or among
// its own flags.
type globals struct {
	url        string
	token      string
	apiVersion string
	timeout    time.Duration
	json       bool
}

// isGlobal reports whether a flag is a global one, which command usage
// texts list apart.
func isGlobal(name string) bool {
	switch name {
	case "url", "token", "api-version", "timeout", "json":
		return true
	}
	return false
}

// register adds the global flags to fs, bound to g; values parsed earlier
// (before the command) stay unless the command's flags set them again.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "orchestrator base `URL` (env "+envURL+"; default "+defaultURL+")")
	fs.StringVar(&g.token, "token", g.token, "client `TOKEN` (env "+envToken+")")
	fs.StringVar(&g.apiVersion, "api-version", g.apiVersion, "client API `version`")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "limit of each HTTP request, 0 for none")
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of text")
}

// app is one invocation of the command line.
type app struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	g      globals
	base   string // the orchestrator URL the client was made for
}

// run executes the command line args (without the program name) and
// returns the exit status. Normal output goes to stdout, errors and
// diagnostics to stderr; env looks up environment variables.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	a := &app{
		stdout: stdout,
		stderr: stderr,
		getenv: env,
		g:      globals{apiVersion: client.DefaultAPIVersion, timeout: defaultTimeout},
	}
	return a.report(a.dispatch(ctx, args))
}

// dispatch parses the global flags and the command words, then runs the
// command.
func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := newFlagSet("avtomatika")
	a.g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return a.printMainUsage(a.stdout)
		}
		return usageErrorf(nil, "%s", flagError(fs, err))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		_ = a.printMainUsage(a.stderr)
		return usageErrorf(nil, "no command given")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return a.help(rest)
	}
	cmd := find(commands(), name)
	if cmd == nil {
		return usageErrorf(nil, "unknown command %q", name)
	}
	if cmd.subs == nil {
		return a.runLeaf(ctx, cmd, []string{name}, rest)
	}

	// A group: global flags may come before the subcommand too.
	path := []string{name}
	gfs := newFlagSet("avtomatika " + name)
	a.g.register(gfs)
	if err := gfs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return a.printGroupUsage(a.stdout, cmd)
		}
		return usageErrorf(path, "%s", flagError(gfs, err))
	}
	rest = gfs.Args()
	if len(rest) == 0 {
		return usageErrorf(path, "missing subcommand (%s)", strings.Join(names(cmd.subs), ", "))
	}
	sub, rest := rest[0], rest[1:]
	if sub == "help" {
		return a.help(append(path, rest...))
	}
	leaf := find(cmd.subs, sub)
	if leaf == nil {
		return usageErrorf(path, "unknown subcommand %q (want %s)", sub, strings.Join(names(cmd.subs), ", "))
	}
	return a.runLeaf(ctx, leaf, append(path, sub), rest)
}

// runLeaf parses a command's flags and arguments and runs it.
func (a *app) runLeaf(ctx context.Context, cmd *command, path, args []string) error {
	fs := newFlagSet("avtomatika " + strings.Join(path, " "))
	a.g.register(fs)
	act := cmd.setup(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return a.printLeafUsage(a.stdout, cmd, path, fs)
		}
		return usageErrorf(path, "%s", flagError(fs, err))
	}
	names := strings.Fields(cmd.args)
	for i, p := range pos {
		if strings.TrimSpace(p) == "" && i < len(names) {
			return usageErrorf(path, "empty %s", names[i])
		}
	}
	switch {
	case len(pos) < cmd.minArgs:
		return usageErrorf(path, "missing arguments: want %s", cmd.args)
	case len(pos) > cmd.maxArgs && cmd.args == "":
		return usageErrorf(path, "unexpected argument %q: the command takes none", pos[cmd.maxArgs])
	case len(pos) > cmd.maxArgs:
		return usageErrorf(path, "unexpected argument %q: want %s", pos[cmd.maxArgs], cmd.args)
	}
	return act(ctx, a, pos)
}

// help prints the usage of the command named by words, or the main usage.
func (a *app) help(words []string) error {
	if len(words) == 0 {
		return a.printMainUsage(a.stdout)
	}
	cmd := find(commands(), words[0])
	if cmd == nil {
		return usageErrorf(nil, "help: unknown command %q", words[0])
	}
	path := words[:1]
	if cmd.subs != nil {
		if len(words) == 1 {
			return a.printGroupUsage(a.stdout, cmd)
		}
		leaf := find(cmd.subs, words[1])
		if leaf == nil {
			return usageErrorf(path, "help: unknown subcommand %q", words[1])
		}
		cmd, path = leaf, words[:2]
	}
	fs := newFlagSet("avtomatika " + strings.Join(path, " "))
	a.g.register(fs)
	cmd.setup(fs)
	return a.printLeafUsage(a.stdout, cmd, path, fs)
}

// client returns an API client for the global flags and the environment.
func (a *app) client() (*client.Client, error) {
	base := first(a.g.url, a.getenv(envURL), defaultURL)
	a.base = base
	token := first(a.g.token, a.getenv(envToken))
	if token == "" {
		return nil, usageErrorf(nil, "no client token: pass --token or set %s", envToken)
	}
	if a.g.timeout < 0 {
		return nil, usageErrorf(nil, "--timeout must not be negative")
	}
	c, err := client.New(base, token,
		client.WithAPIVersion(a.g.apiVersion),
		client.WithHTTPClient(&http.Client{Timeout: a.g.timeout}))
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "avtomatika: ")
		if strings.Contains(msg, "base URL") {
			msg += fmt.Sprintf(" (--url or %s is the orchestrator's root URL, e.g. %s)", envURL, defaultURL)
		}
		return nil, usageErrorf(nil, "%s", msg)
	}
	return c, nil
}

// command writes an avtomatika command line for the user to run next: the
// words, shell-quoted, after the global flags this run was given that the
// next one needs too (never the token).
func (a *app) command(words ...string) string {
	parts := []string{"avtomatika"}
	if a.g.url != "" {
		parts = append(parts, "--url", shellQuote(a.g.url))
	}
	if a.g.apiVersion != client.DefaultAPIVersion {
		parts = append(parts, "--api-version", shellQuote(a.g.apiVersion))
	}
	for _, w := range words {
		parts = append(parts, shellQuote(w))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell unless it needs no quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/@%+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// badValue matches the flag package's error for a value it cannot parse.
var badValue = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): `)

// flagError rewords an error of the flag package the way this command line
// writes flags (--name), saying what a value must look like.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown flag --" + strings.TrimLeft(name, "-")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "--" + strings.TrimLeft(name, "-") + " needs a value"
	}
	m := badValue.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	value, name := m[1], m[2]
	want := "valid"
	if f := fs.Lookup(name); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case time.Duration:
				want = "a duration, e.g. 500ms, 2s or 1m"
			case int, int64, uint, uint64:
				want = "a whole number"
			case bool:
				want = "true or false"
			}
		}
	}
	return fmt.Sprintf("--%s: %s is not %s", name, value, want)
}

// first returns the first non-empty value.
func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// newFlagSet returns a flag set that reports errors to its caller instead
// of printing them or exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags that may come before, between and after
// positional arguments ("jobs get ID --json"), and returns the positional
// arguments. Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
