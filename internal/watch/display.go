package watch

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/schollz/progressbar/v3"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

const (
	// BarCells is the width of the bar itself.
	BarCells = 30
	// minBarCells is the narrowest the bar gets on a narrow terminal,
	// where it gives way to the status and the state.
	minBarCells = 10
	// steps is the resolution of the bar: per mille of the job's progress.
	steps = 1000
	// minMessage is the least room, in columns, for which a shortened
	// progress message is still shown; with less it is left out.
	minMessage = 8
	// ellipsis marks the part of a message left out.
	ellipsis = "…"
	// eraseLine erases from the cursor to the end of the line (ANSI EL), so
	// that a redraw shorter than the line before leaves nothing of it.
	eraseLine = "\x1b[K"
)

// display shows successive observations of one job, and the hints that
// go with them.
type display interface {
	update(j *protocol.Job, hint string) error
	close() error
}

// plainDisplay prints one line per change, for writers that are not
// terminals. Lines are never shortened: a log keeps all of them.
type plainDisplay struct {
	out      io.Writer
	last     string
	lastHint string
}

func (d *plainDisplay) update(j *protocol.Job, hint string) error {
	var b strings.Builder
	if line := fmt.Sprintf("%3d%% %s", percent(j.Progress), Describe(j)); line != d.last {
		d.last = line
		b.WriteString(line + "\n")
	}
	if hint != d.lastHint {
		d.lastHint = hint
		if hint != "" {
			b.WriteString(hint + "\n")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(d.out, b.String())
	return err
}

func (d *plainDisplay) close() error { return nil }

// barDisplay redraws one terminal line: the percentage, a bar drawn by
// github.com/schollz/progressbar/v3, and the description. Each redraw is a
// single write of "\r", the line and an erase to the end of the line, so
// nothing of a longer line before is left; and the line is kept narrower
// than the terminal, because a line that wraps cannot be redrawn in place.
// Hints go on lines of their own above it.
type barDisplay struct {
	out      io.Writer
	columns  func() int // the terminal's width now
	last     string     // the line on screen
	lastHint string
	drawn    bool
}

func newBarDisplay(w io.Writer, columns func() int) *barDisplay {
	return &barDisplay{out: w, columns: columns}
}

func (d *barDisplay) update(j *protocol.Job, hint string) error {
	var b strings.Builder
	if hint != d.lastHint {
		d.lastHint = hint
		if hint != "" {
			b.WriteString("\r" + hint + eraseLine + "\n")
		}
	}
	line := barLine(j, d.columns())
	if b.Len() == 0 && d.drawn && line == d.last {
		return nil
	}
	b.WriteString("\r" + line + eraseLine)
	d.last, d.drawn = line, true
	_, err := io.WriteString(d.out, b.String())
	return err
}

// close ends the bar's line, so that whatever follows starts on a new one.
func (d *barDisplay) close() error {
	if !d.drawn {
		return nil
	}
	_, err := io.WriteString(d.out, "\n")
	return err
}

// barLine is the line for a job on a terminal of the given width: it takes
// at most columns-1 cells (the last column stays free, so the terminal
// never wraps). The status and the state are never cut: a long progress
// message loses its middle, and where even that does not fit, the bar gets
// narrower and then the message is left out.
func barLine(j *protocol.Job, columns int) string {
	limit := columns - 1
	head, msg := describe(j)
	pm := permille(j.Progress)
	cells := BarCells
	if over := width(renderBar(pm, cells, head)) - limit; over > 0 {
		cells = max(minBarCells, cells-over)
	}
	line := renderBar(pm, cells, head)
	if msg == "" {
		return line
	}
	room := limit - width(line) - 1 // one space before the message
	if room < minMessage && room < width(msg) {
		return line
	}
	return renderBar(pm, cells, head+" "+shortenMiddle(msg, room))
}

// renderBar has the progress bar library render "NNN% |bar|  description"
// and returns it without the carriage return and trailing spaces the
// library adds. A fresh bar draws each line: the library's own redraws
// pad with spaces instead of erasing, and stop redrawing once the bar is
// full, while the description may still change.
func renderBar(pm int64, cells int, description string) string {
	bar := progressbar.NewOptions64(steps,
		progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetWidth(cells),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionEnableColorCodes(false),
		progressbar.OptionSetDescription(description),
	)
	_ = bar.Set64(pm) // draws only when the percentage is above 0
	if bar.String() == "" {
		_ = bar.RenderBlank()
	}
	return strings.TrimRight(strings.TrimPrefix(bar.String(), "\r"), " ")
}

// shortenMiddle fits s into room columns by replacing its middle with "…",
// so that both its start and its end (often an id or a count) stay.
func shortenMiddle(s string, room int) string {
	if width(s) <= room {
		return s
	}
	switch {
	case room <= 0:
		return ""
	case room == 1:
		return ellipsis
	}
	var clusters []string
	var widths []int
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		clusters = append(clusters, g.Str())
		widths = append(widths, g.Width())
	}
	keep := room - width(ellipsis)
	headRoom, tailRoom := keep-keep/2, keep/2
	var head, tail strings.Builder
	i, used := 0, 0
	for ; i < len(clusters) && used+widths[i] <= headRoom; i++ {
		head.WriteString(clusters[i])
		used += widths[i]
	}
	k, used := len(clusters), 0
	for k > i && used+widths[k-1] <= tailRoom {
		k--
		used += widths[k]
	}
	for _, c := range clusters[k:] {
		tail.WriteString(c)
	}
	return strings.TrimRight(head.String(), " ") + ellipsis + strings.TrimLeft(tail.String(), " ")
}

// width is the number of terminal cells s takes.
func width(s string) int { return uniseg.StringWidth(s) }

// Describe returns what the progress line shows after the bar: the status
// in capitals, the current state in brackets (unless it only repeats the
// status) and the progress message, or the error of a job that ended
// without finishing. Control characters are replaced by spaces, so the
// server cannot break the line or send terminal escapes.
func Describe(j *protocol.Job) string {
	head, msg := describe(j)
	if msg == "" {
		return head
	}
	return head + " " + msg
}

// describe returns the two parts of Describe: the status with the state,
// which is always shown whole, and the message, which may be shortened.
func describe(j *protocol.Job) (head, msg string) {
	head = strings.ToUpper(string(j.Status))
	if head == "" {
		head = "UNKNOWN"
	}
	if st := j.CurrentState; st != "" && !strings.EqualFold(st, string(j.Status)) {
		head += " [" + st + "]"
	}
	msg = j.ProgressMessage
	if j.Status.Terminal() && j.Status != protocol.StatusFinished && j.ErrorMessage != "" {
		msg = "error: " + j.ErrorMessage
	}
	return clean(head), clean(msg)
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
