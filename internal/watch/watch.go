// Package watch follows a job of the client API on one live line: a 30-cell
// progress bar, the percentage, the status in capitals, the progress message
// and the current state. The command line (avtomatika jobs watch) and the
// showcase client share it.
//
// On a terminal the line is redrawn in place (with
// github.com/schollz/progressbar/v3); on anything else (a file, a pipe, a CI
// log, a test buffer) a plain line is printed each time what it shows
// changes.
package watch

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/term"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// DefaultPollInterval is how often Job polls unless PollEvery says otherwise.
const DefaultPollInterval = 500 * time.Millisecond

// Option configures Job.
type Option func(*config)

type config struct {
	interval time.Duration
	terminal *bool // nil: detect from the writer
	width    int   // terminal columns; 0: ask the terminal (or assume 80)
}

// PollEvery sets how often the job is polled (default DefaultPollInterval).
// Non-positive values keep the default.
func PollEvery(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.interval = d
		}
	}
}

// Terminal forces the redrawn progress bar (true) or plain one-line updates
// (false). By default the bar is drawn only when the writer is a terminal.
func Terminal(on bool) Option {
	return func(c *config) { c.terminal = &on }
}

// Width sets the number of terminal columns the bar line may use (default:
// the terminal's width, or 80 when it cannot be read). Longer progress
// messages are shortened so that the line never wraps, which would break
// the redraw.
func Width(columns int) Option {
	return func(c *config) { c.width = columns }
}

// Job polls the job until it ends, showing its progress on out, and returns
// the final job. The line is finished with a newline when the job ends and
// when following it fails. Errors of the client (ctx ended, job not found,
// too many network errors in a row) are returned as they are, so errors.Is
// works with the client's sentinels; a write to out that fails stops the
// watch with that error.
func Job(ctx context.Context, c *client.Client, jobID string, out io.Writer, opts ...Option) (*protocol.Job, error) {
	cfg := config{interval: DefaultPollInterval}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	switch {
	case ctx == nil:
		return nil, fmt.Errorf("watch job %q: nil context", jobID)
	case c == nil:
		return nil, fmt.Errorf("watch job %q: nil client", jobID)
	case out == nil:
		out = io.Discard
	}
	d := newDisplay(out, cfg)

	// A writer that fails (a closed pipe, say) stops the watch: nobody
	// sees the progress any more.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var writeErr error
	job, err := c.Wait(ctx, jobID, client.PollEvery(cfg.interval), client.OnProgress(func(j *protocol.Job) {
		if writeErr != nil {
			return
		}
		if writeErr = d.update(j); writeErr != nil {
			stop(writeErr)
		}
	}))
	if cerr := d.close(); writeErr == nil {
		writeErr = cerr
	}
	if writeErr != nil {
		return job, fmt.Errorf("watch job %q: write progress: %w", jobID, writeErr)
	}
	return job, err
}

// newDisplay returns the redrawn bar for terminals and plain lines for
// everything else, unless Terminal decided.
func newDisplay(out io.Writer, cfg config) display {
	fd, isTerm := terminalFd(out)
	if cfg.terminal != nil {
		isTerm = *cfg.terminal
	}
	if !isTerm {
		return &plainDisplay{out: out}
	}
	width := cfg.width
	if width <= 0 && fd >= 0 {
		if w, _, err := term.GetSize(fd); err == nil {
			width = w
		}
	}
	if width <= 0 {
		width = 80
	}
	return newBarDisplay(out, width)
}

// terminalFd returns the file descriptor of out and whether it is a
// terminal; -1 when out is not a file.
func terminalFd(out io.Writer) (int, bool) {
	f, ok := out.(interface{ Fd() uintptr })
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}
