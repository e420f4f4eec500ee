package api

import (
	"net/url"
	"strconv"
)

// intParam reads the integer query parameter name, def when it is absent.
// ok is false when it is present but empty, repeated, not an integer, or
// outside [lo, hi]: the caller answers 400 rather than guess (an empty
// value read as the default, or the first of several, hides a client's
// mistake).
func intParam(q url.Values, name string, lo, hi, def int) (n int, ok bool) {
	vs, present := q[name]
	if !present {
		return def, true
	}
	if len(vs) != 1 {
		return 0, false
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}
