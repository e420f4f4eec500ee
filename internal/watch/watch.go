// Package watch follows a job of the client API on one live line: the
// percentage, a 30-cell progress bar, the status in capitals, the current
// state and the progress message. The command line (avtomatika jobs watch)
// and the showcase client share it.
//
// On a terminal the line is redrawn in place (the bar drawn by
// github.com/schollz/progressbar/v3): each redraw erases what is left of
// the line before, and the line is fitted to the terminal's width, read
// again at every redraw, by shortening the middle of a long progress
// message with "…" (never the status or the state). On anything else (a
// file, a pipe, a CI log, a test buffer) a plain line is printed, whole,
// each time what it shows changes.
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
	hint     func(*protocol.Job) string
}

// defaultWidth is the width assumed for a terminal whose size cannot be
// read.
const defaultWidth = 80

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
// the terminal's width, read at every redraw, or 80 when it cannot be
// read). Longer progress messages are shortened so that the line never
// wraps, which would break the redraw.
func Width(columns int) Option {
	return func(c *config) { c.width = columns }
}

// Hint sets a function that may return a line to show with an observation
// of the job, such as how to send the decision a job waits for. The line
// is printed once, on a line of its own (above the bar on a terminal),
// each time it changes to a non-empty text; control characters become
// spaces.
func Hint(fn func(*protocol.Job) string) Option {
	return func(c *config) { c.hint = fn }
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
		var hint string
		if cfg.hint != nil {
			hint = clean(cfg.hint(j))
		}
		if writeErr = d.update(j, hint); writeErr != nil {
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
	return newBarDisplay(out, func() int {
		if cfg.width > 0 {
			return cfg.width
		}
		if fd >= 0 {
			if w, _, err := term.GetSize(fd); err == nil && w > 0 {
				return w
			}
		}
		return defaultWidth
	})
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
