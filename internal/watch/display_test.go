package watch

import (
	"strings"
	"testing"

	"github.com/rivo/uniseg"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// screen is a small terminal: it understands "\r", "\n" and the erase to
// the end of the line, and records whether a line ever wrapped.
type screen struct {
	t       *testing.T
	columns int
	rows    [][]string // cells; a wide character takes one cell and the next one empty
	col     int
	wrapped bool
}

func newScreen(t *testing.T, columns int) *screen {
	return &screen{t: t, columns: columns, rows: [][]string{nil}}
}

func (s *screen) Write(p []byte) (int, error) {
	text := string(p)
	for text != "" {
		switch {
		case strings.HasPrefix(text, eraseLine):
			row := &s.rows[len(s.rows)-1]
			*row = (*row)[:min(s.col, len(*row))]
			text = text[len(eraseLine):]
			continue
		case strings.HasPrefix(text, "\x1b"):
			s.t.Fatalf("unexpected escape sequence in %q", text)
		case text[0] == '\r':
			s.col = 0
		case text[0] == '\n':
			s.rows = append(s.rows, nil)
			s.col = 0
		default:
			g, rest, w, _ := uniseg.FirstGraphemeClusterInString(text, -1)
			if s.col+w > s.columns {
				s.wrapped = true
				s.rows = append(s.rows, nil)
				s.col = 0
			}
			row := &s.rows[len(s.rows)-1]
			for len(*row) < s.col+w {
				*row = append(*row, " ")
			}
			(*row)[s.col] = g
			for i := 1; i < w; i++ {
				(*row)[s.col+i] = ""
			}
			s.col += w
			text = rest
			continue
		}
		text = text[1:]
	}
	return len(p), nil
}

// lines returns what the screen shows, one string per row.
func (s *screen) lines() []string {
	out := make([]string, len(s.rows))
	for i, r := range s.rows {
		out[i] = strings.Join(r, "")
	}
	return out
}

// current is the row the cursor is on.
func (s *screen) current() string { return strings.Join(s.rows[len(s.rows)-1], "") }

func fixed(columns int) func() int { return func() int { return columns } }

const longMessage = "3 of 3 parallel tasks dispatched: analyze_file to cpu-worker-unreliable-5c0f2a1e-9b7d-4e1f-a3c2-3f4d2b1c0db-7e"

func TestRedrawLeavesNothingOfALongerLine(t *testing.T) {
	t.Parallel()
	for _, columns := range []int{80, 120, 200} {
		scr := newScreen(t, columns)
		d := newBarDisplay(scr, fixed(columns))
		steps := []protocol.Job{
			{Status: protocol.StatusRunning, CurrentState: "analyze_files", Progress: 0.4, ProgressMessage: longMessage},
			{Status: protocol.StatusFinished, CurrentState: "finished", Progress: 1, ProgressMessage: "3 of 3 parallel tasks done"},
		}
		for i := range steps {
			if err := d.update(&steps[i], ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.close(); err != nil {
			t.Fatal(err)
		}
		want := " 100% |" + strings.Repeat("█", BarCells) + "|  FINISHED 3 of 3 parallel tasks done"
		if got := scr.lines(); len(got) != 2 || got[0] != want || got[1] != "" {
			t.Errorf("%d columns: screen shows %q, want %q and an empty line", columns, got, want)
		}
		if scr.wrapped {
			t.Errorf("%d columns: a line wrapped", columns)
		}
	}
}

func TestLongMessageLosesItsMiddle(t *testing.T) {
	t.Parallel()
	job := &protocol.Job{Status: protocol.StatusRunning, CurrentState: "analyze_files", Progress: 0.425, ProgressMessage: longMessage}
	for _, columns := range []int{80, 100, 140} {
		line := barLine(job, columns)
		if w := uniseg.StringWidth(line); w > columns-1 {
			t.Errorf("%d columns: line of %d cells: %q", columns, w, line)
		}
		if !strings.HasPrefix(line, "  42% |"+strings.Repeat("█", 12)) || !strings.Contains(line, "|  RUNNING [analyze_files] ") {
			t.Errorf("%d columns: bar, status or state cut: %q", columns, line)
		}
		msg := line[strings.Index(line, "] ")+2:]
		if !strings.Contains(msg, "…") || !strings.HasPrefix(msg, "3 of") || !strings.HasSuffix(msg, "db-7e") {
			t.Errorf("%d columns: message not shortened in its middle: %q", columns, msg)
		}
	}
	// Wide enough, the line has all of the message.
	if line := barLine(job, 300); !strings.HasSuffix(line, "] "+longMessage) {
		t.Errorf("300 columns: %q", line)
	}
}

func TestNarrowTerminalKeepsStatusAndState(t *testing.T) {
	t.Parallel()
	job := &protocol.Job{Status: protocol.StatusWaitingForHuman, CurrentState: "review_transcoded_video", ProgressMessage: longMessage}
	head := "WAITING_FOR_HUMAN [review_transcoded_video]"
	// "   0% |" + bar + "|  " + head
	narrowest := len("   0% |") + minBarCells + len("|  ") + len(head)
	for columns := 30; columns <= 110; columns++ {
		line := barLine(job, columns)
		if !strings.Contains(line, "|  "+head) {
			t.Fatalf("%d columns: status or state cut: %q", columns, line)
		}
		w := uniseg.StringWidth(line)
		switch {
		case columns-1 >= narrowest && w > columns-1:
			t.Errorf("%d columns: line of %d cells: %q", columns, w, line)
		case columns-1 < narrowest && w != narrowest:
			t.Errorf("%d columns: the bar is not at its narrowest: %q", columns, line)
		}
	}
	// The bar gives way to the status and the state, and a message with
	// less room than a few columns is left out rather than shown as a stub.
	if line := barLine(job, 75); uniseg.StringWidth(line) != 74 || !strings.HasSuffix(line, "|  "+head) {
		t.Errorf("75 columns: %q", line)
	}
}

func TestWideCharactersCountTwice(t *testing.T) {
	t.Parallel()
	job := &protocol.Job{Status: protocol.StatusRunning, ProgressMessage: strings.Repeat("変換中のファイル", 10) + " done"}
	line := barLine(job, 80)
	if w := uniseg.StringWidth(line); w > 79 || !strings.HasSuffix(line, "done") || !strings.Contains(line, "…") {
		t.Errorf("line of %d cells: %q", w, line)
	}
}

func TestWidthReadAtEveryRedraw(t *testing.T) {
	t.Parallel()
	columns := 200
	scr := newScreen(t, 200)
	d := newBarDisplay(scr, func() int { return columns })
	job := &protocol.Job{Status: protocol.StatusRunning, CurrentState: "analyze_files", Progress: 0.5, ProgressMessage: longMessage}
	if err := d.update(job, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(scr.current(), longMessage) {
		t.Fatalf("200 columns: %q", scr.current())
	}
	columns = 90 // the terminal was made narrower
	if err := d.update(job, ""); err != nil {
		t.Fatal(err)
	}
	if line := scr.current(); uniseg.StringWidth(line) > 89 || !strings.Contains(line, "…") {
		t.Errorf("90 columns: %q", line)
	}
}

func TestUnchangedLineIsNotRedrawn(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	d := newBarDisplay(&out, fixed(80))
	job := &protocol.Job{Status: protocol.StatusRunning, Progress: 0.5}
	for range 3 {
		if err := d.update(job, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(out.String(), "\r"); n != 1 {
		t.Errorf("%d redraws of the same line: %q", n, out.String())
	}
}

func TestHints(t *testing.T) {
	t.Parallel()
	waiting := &protocol.Job{Status: protocol.StatusWaitingForHuman, CurrentState: "review"}
	running := &protocol.Job{Status: protocol.StatusRunning, CurrentState: "encode", Progress: 0.5}
	const hint = "To send a decision: avtomatika jobs approve j1 DECISION"

	t.Run("plain", func(t *testing.T) {
		var out strings.Builder
		d := &plainDisplay{out: &out}
		for _, step := range []struct {
			job  *protocol.Job
			hint string
		}{{waiting, hint}, {waiting, hint}, {running, ""}, {waiting, hint}} {
			if err := d.update(step.job, step.hint); err != nil {
				t.Fatal(err)
			}
		}
		want := "  0% WAITING_FOR_HUMAN [review]\n" + hint + "\n" +
			" 50% RUNNING [encode]\n" +
			"  0% WAITING_FOR_HUMAN [review]\n" + hint + "\n"
		if out.String() != want {
			t.Errorf("got\n%s\nwant\n%s", out.String(), want)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		scr := newScreen(t, 80)
		d := newBarDisplay(scr, fixed(80))
		for _, h := range []string{hint, hint} {
			if err := d.update(waiting, h); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.update(running, ""); err != nil {
			t.Fatal(err)
		}
		got := scr.lines()
		if len(got) != 2 || got[0] != hint || !strings.HasSuffix(got[1], "|  RUNNING [encode]") {
			t.Errorf("screen: %q", got)
		}
	})
}

func TestShortenMiddle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		room int
		want string
	}{
		{"abcdef", 6, "abcdef"},
		{"abcdef", 5, "ab…ef"},
		{"abcdefg", 4, "ab…g"},
		{"abc def ghi", 6, "abc…hi"},
		{"abc  def", 4, "ab…f"},
		{"abcdef", 1, "…"},
		{"abcdef", 0, ""},
		{"日本語テキスト", 7, "日…ト"},
	}
	for _, tt := range tests {
		got := shortenMiddle(tt.s, tt.room)
		if got != tt.want {
			t.Errorf("shortenMiddle(%q, %d) = %q, want %q", tt.s, tt.room, got, tt.want)
		}
		if w := uniseg.StringWidth(got); w > max(tt.room, 0) {
			t.Errorf("shortenMiddle(%q, %d) is %d cells wide", tt.s, tt.room, w)
		}
	}
}
