package httpbody

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// Read reads what io.ReadAll reads, whatever the size announced (right,
// too small, too large, unknown) and however the reader hands it over, and
// passes on a reader's error.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"job_id":"j"}`), int64(14))
	f.Add([]byte(`{}`), int64(-1))
	f.Add(bytes.Repeat([]byte("x"), 2000), int64(10))
	f.Add(bytes.Repeat([]byte("y"), 700), int64(5000))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, body []byte, size int64) {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
			"halves":   iotest.HalfReader,
			"data+EOF": iotest.DataErrReader,
		} {
			got, err := Read(wrap(bytes.NewReader(body)), size)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%s, %d announced: read %q (%v), want %q", name, size, got, err, body)
			}
		}
		broken := errors.New("connection reset")
		got, err := Read(io.MultiReader(bytes.NewReader(body), iotest.ErrReader(broken)), size)
		if !errors.Is(err, broken) || !bytes.Equal(got, body) {
			t.Fatalf("a reader that fails after %d bytes: read %d (%v)", len(body), len(got), err)
		}
	})
}
