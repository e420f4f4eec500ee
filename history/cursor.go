package history

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cursor is a position in the newest-first order of ListJobs: the page
// after it starts with the first job older than CreatedAt, or as old and
// with a smaller ID. Its string form ("<unix nanoseconds>:<job id>") is the
// one the live store uses.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// CursorAt returns the cursor after a job.
func CursorAt(createdAt time.Time, id string) Cursor {
	return Cursor{CreatedAt: createdAt, ID: id}
}

func (c Cursor) String() string {
	return strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + ":" + c.ID
}

// ParseCursor is the inverse of Cursor.String; errors wrap ErrInvalidCursor.
func ParseCursor(s string) (Cursor, error) {
	n, id, ok := strings.Cut(s, ":")
	nanos, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, fmt.Errorf("%w %q", ErrInvalidCursor, s)
	}
	return Cursor{CreatedAt: time.Unix(0, nanos).UTC(), ID: id}, nil
}
