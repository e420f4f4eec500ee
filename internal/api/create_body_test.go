package api

import "testing"

// Only JSON's whitespace counts as an empty create body: a vertical tab or
// a form feed is not JSON, and is refused (Schemathesis sent "\x0b").
func TestCreateBodyWhitespace(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", " \t\r\n"} {
		if req, err := parseCreateBody([]byte(body)); err != nil || req.InitialData == nil {
			t.Errorf("%q: %+v %v, want a job without input", body, req, err)
		}
	}
	for _, body := range []string{"\x0b", "\x0c", " \x0b{}", "\u00a0"} {
		if _, err := parseCreateBody([]byte(body)); err == nil {
			t.Errorf("%q was accepted", body)
		}
	}
}
