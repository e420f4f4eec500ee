package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Exit statuses; usage.go documents them.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitAuth        = 4
	exitRateLimited = 5
	exitJobFailed   = 6
	exitInterrupted = 130
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	path []string // the command words, e.g. ["jobs", "get"]; nil for the program
	msg  string
}

func usageErrorf(path []string, format string, args ...any) *usageError {
	return &usageError{path: path, msg: fmt.Sprintf(format, args...)}
}

func (e *usageError) Error() string { return e.msg }

// jobEndedError reports a followed job that ended without finishing: exit
// status 6.
type jobEndedError struct{ job *protocol.Job }

func (e *jobEndedError) Error() string {
	msg := fmt.Sprintf("job %s ended %s", e.job.ID, e.job.Status)
	if e.job.ErrorMessage != "" {
		msg += ": " + e.job.ErrorMessage
	}
	return msg
}

// contextError adds context to an error without repeating the client's
// "avtomatika: " prefix in the middle of the message.
type contextError struct {
	msg string
	err error
}

func wrapf(err error, format string, args ...any) error {
	return &contextError{msg: fmt.Sprintf(format, args...), err: err}
}

func (e *contextError) Error() string {
	return e.msg + ": " + strings.TrimPrefix(e.err.Error(), "avtomatika: ")
}

func (e *contextError) Unwrap() error { return e.err }

// refusal is a refusal of the server that the command line words itself
// (a job that has already ended, a decision the job does not offer). It
// matches its sentinel, such as client.ErrConflict, and no other: the
// server's own answer (a 404 for cancelling an ended job) is not its exit
// status.
type refusal struct {
	msg      string
	sentinel error
}

func (e *refusal) Error() string { return e.msg }

func (e *refusal) Is(target error) bool { return target == e.sentinel }

// retold is an error whose message says more than the client's, keeping
// the error for errors.Is and the exit status.
type retold struct {
	msg string
	err error
}

func (e *retold) Error() string { return e.msg }

func (e *retold) Unwrap() error { return e.err }

// retell replaces the text of apiErr at the end of err's message with
// text, keeping what comes before it (the operation, e.g. "list jobs: ").
func retell(err error, apiErr *client.Error, text string) error {
	msg, inner := err.Error(), apiErr.Error()
	if i := strings.LastIndex(msg, inner); i >= 0 {
		msg = msg[:i] + text + msg[i+len(inner):]
	} else {
		msg = text
	}
	return &retold{msg: msg, err: err}
}

// explain adds to an error of the client what the user can do about it: a
// token the orchestrator refused, a URL that is not the orchestrator's
// root, an orchestrator that does not answer.
func (a *app) explain(err error) error {
	var told *retold
	if errors.Is(err, context.Canceled) || errors.As(err, &told) {
		return err // interrupted, or explained already
	}
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.StatusCode == http.StatusUnauthorized:
			return retell(err, apiErr, a.tokenAdvice(apiErr))
		case apiErr.StatusCode == http.StatusNotFound && (a.apiRoot() != "" || routeNotFound(apiErr)):
			return retell(err, apiErr, apiErr.Error()+": "+a.urlAdvice())
		}
		return err
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &opErr) && opErr.Op == "dial":
		return &retold{msg: fmt.Sprintf("%v (is the orchestrator running at %s? --url or %s says where it is)",
			err, redact(a.base), envURL), err: err}
	case errors.As(err, &urlErr) && urlErr.Timeout() && a.g.timeout > 0:
		return &retold{msg: fmt.Sprintf("%v; no answer within --timeout %v (0 for no limit)", err, a.g.timeout), err: err}
	}
	return err
}

// tokenAdvice explains a 401: the token the command sent is not one the
// orchestrator knows.
func (a *app) tokenAdvice(apiErr *client.Error) string {
	why := "401"
	if d := apiErr.Detail(); d != "" {
		why += ": " + d
	}
	if a.g.token != "" {
		return fmt.Sprintf("the orchestrator refused the client token given with --token (%s): "+
			"pass a token from the orchestrator's clients.toml with --token (or set %s)", why, envToken)
	}
	return fmt.Sprintf("the orchestrator refused the client token in %s (%s): "+
		"set %s (or --token) to a token from the orchestrator's clients.toml", envToken, why, envToken)
}

// routeNotFound reports a 404 that no handler of the API wrote: net/http's
// "404 page not found" for a route the server does not have, or a page of
// a proxy in front of it. The API's own 404s say what was not found.
func routeNotFound(e *client.Error) bool {
	return e.StatusCode == http.StatusNotFound && (e.Detail() == "" || strings.HasPrefix(e.Message, "<"))
}

// urlAdvice explains a 404 for a route: --url is not the orchestrator's
// root, or the API version is not one it serves.
func (a *app) urlAdvice() string {
	prefix := protocol.ClientPrefix
	if v := strings.Trim(a.g.apiVersion, "/"); v != "" {
		prefix += "/" + v
	}
	if root := a.apiRoot(); root != "" {
		return fmt.Sprintf("the orchestrator URL %s ends in an API path, but --url (or %s) takes the orchestrator's root: "+
			"use %s (the command adds %s itself)", redact(a.base), envURL, root, prefix)
	}
	return fmt.Sprintf("the server at %s has no route under %s: --url (or %s) takes the orchestrator's root, e.g. %s, "+
		"and --api-version must be a version it serves", redact(a.base), prefix, envURL, defaultURL)
}

// redact hides the password of a URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// apiRoot returns the orchestrator URL without the API path it ends in
// (".../api" or ".../api/v1", with or without a trailing slash), or "" when
// it does not end in one.
func (a *app) apiRoot() string {
	u, err := url.Parse(a.base)
	if err != nil || u.Host == "" {
		return ""
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	n := len(segs)
	switch {
	case n >= 1 && "/"+segs[n-1] == protocol.ClientPrefix:
		segs = segs[:n-1]
	case n >= 2 && "/"+segs[n-2] == protocol.ClientPrefix:
		segs = segs[:n-2]
	default:
		return ""
	}
	u.Path = strings.Join(segs, "/")
	if u.Path != "" {
		u.Path = "/" + u.Path
	}
	u.RawPath = ""
	return u.Redacted()
}

// report prints err, if any, on stderr and returns the exit status for it.
func (a *app) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		cmd := strings.Join(append([]string{"avtomatika"}, ue.path...), " ")
		fmt.Fprintf(a.stderr, "%s: %s\n", cmd, ue.msg)
		help := strings.Join(append([]string{"avtomatika", "help"}, ue.path...), " ")
		fmt.Fprintf(a.stderr, "Run '%s' for usage.\n", help)
		return exitUsage
	}
	err = a.explain(err)
	fmt.Fprintf(a.stderr, "avtomatika: %s\n", strings.TrimPrefix(err.Error(), "avtomatika: "))
	return exitCode(err)
}

// exitCode maps an error to the documented exit status.
func exitCode(err error) int {
	var ended *jobEndedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ended):
		return exitJobFailed
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return exitAuth
	case errors.Is(err, client.ErrRateLimited):
		return exitRateLimited
	}
	return exitError
}
