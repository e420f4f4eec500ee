package watch

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

const (
	// BarCells is the width of the bar itself.
	BarCells = 30
	// steps is the resolution of the bar: per mille of the job's progress.
	steps = 1000
	// barOverhead is what the bar line takes besides the description:
	// "\r", " 42% ", "|" + 30 cells + "|", two spaces, and a trailing space,
	// plus one column kept free so the terminal never wraps the line.
	barOverhead = 6 + BarCells + 2 + 2 + 1 + 1
	// minDescription is the least room a description gets on a narrow
	// terminal.
	minDescription = 16
)

// display shows successive observations of one job.
type display interface {
	update(j *protocol.Job) error
	close() error
}

// plainDisplay prints one line per change, for writers that are not
// terminals.
type plainDisplay struct {
	out  io.Writer
	last string
}

func (d *plainDisplay) update(j *protocol.Job) error {
	line := fmt.Sprintf("%3d%% %s", percent(j.Progress), Describe(j))
	if line == d.last {
		return nil
	}
	d.last = line
	_, err := fmt.Fprintln(d.out, line)
	return err
}

func (d *plainDisplay) close() error { return nil }

// barDisplay redraws one terminal line with a progress bar.
type barDisplay struct {
	out   *errWriter
	room  int // columns for the description
	bar   *progressbar.ProgressBar
	drawn bool
}

func newBarDisplay(w io.Writer, columns int) *barDisplay {
	out := &errWriter{w: w}
	return &barDisplay{
		out:  out,
		room: max(columns-barOverhead, minDescription),
		bar: progressbar.NewOptions64(steps,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetWidth(BarCells),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionEnableColorCodes(false),
		),
	}
}

func (d *barDisplay) update(j *protocol.Job) error {
	// Set redraws only when the percentage changes; Describe always
	// redraws, so the line ends up showing both.
	if err := d.bar.Set64(permille(j.Progress)); err != nil {
		return err
	}
	d.bar.Describe(truncate(Describe(j), d.room))
	d.drawn = true
	return d.out.err
}

// close ends the bar's line, so that whatever follows starts on a new one.
func (d *barDisplay) close() error {
	if !d.drawn {
		return nil
	}
	if err := d.bar.Exit(); err != nil {
		return err
	}
	_, err := io.WriteString(d.out, "\n")
	return err
}

// errWriter remembers the first write error, which the progress bar's
// redraws do not all report.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// Describe returns what the progress line shows after the bar: the status
// in capitals, the current state in brackets (unless it only repeats the
// status) and the progress message, or the error of a job that ended
// without finishing. Control characters are replaced by spaces, so the
// server cannot break the line or send terminal escapes.
func Describe(j *protocol.Job) string {
	status := strings.ToUpper(string(j.Status))
	if status == "" {
		status = "UNKNOWN"
	}
	parts := []string{status}
	if st := j.CurrentState; st != "" && !strings.EqualFold(st, string(j.Status)) {
		parts = append(parts, "["+st+"]")
	}
	msg := j.ProgressMessage
	if j.Status.Terminal() && j.Status != protocol.StatusFinished && j.ErrorMessage != "" {
		msg = "error: " + j.ErrorMessage
	}
	if msg = clean(msg); msg != "" {
		parts = append(parts, msg)
	}
	return clean(strings.Join(parts, " "))
}

// percent is the job's progress (0..1) as a whole percentage, the same
// number the bar shows.
func percent(progress float64) int { return int(permille(progress) / 10) }

func permille(progress float64) int64 {
	if math.IsNaN(progress) {
		return 0
	}
	return int64(math.Round(min(max(progress, 0), 1) * steps))
}

// clean replaces control characters with spaces and collapses runs of
// white space.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
