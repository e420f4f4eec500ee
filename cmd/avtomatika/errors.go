package main

import (
	"context"
	"errors"
	"fmt"
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
