package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// checkUTF8 refuses a body that is not UTF-8: decoding would silently
// replace the bad bytes with U+FFFD.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	at := 0
	for at < len(body) {
		r, size := utf8.DecodeRune(body[at:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		at += size
	}
	return fmt.Errorf("the request body is not valid UTF-8 (invalid byte 0x%02x at offset %d)", body[at], at)
}

// checkRequestInput refuses a path or query that holds control characters
// (NUL included) or invalid UTF-8, and a malformed query: no job id, worker
// id, file name or filter can hold them, and the history database refuses
// them with an error rather than a miss.
func checkRequestInput(r *http.Request) error {
	if err := checkText(r.URL.Path); err != nil {
		return fmt.Errorf("invalid path: %w", err)
	}
	if id := r.Header.Get(protocol.HeaderWorkerID); id != "" {
		if err := checkText(id); err != nil {
			return fmt.Errorf("invalid X-Worker-ID header: %w", err)
		}
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	return eachQueryPair(r.URL.RawQuery, func(name, value string) error {
		if err := checkText(name); err != nil {
			return fmt.Errorf("invalid query parameter name %q: %w", name, err)
		}
		if err := checkText(value); err != nil {
			return fmt.Errorf("invalid query parameter %q: %w", name, err)
		}
		return nil
	})
}

// eachQueryPair calls fn with each name and value of a raw query, decoded
// as url.ParseQuery decodes them, but without building its map: every
// request with a query passes here, and most read one parameter, if any.
// A malformed query is an error (errors wrap "invalid query string").
func eachQueryPair(raw string, fn func(name, value string) error) error {
	if strings.Count(raw, "&") >= manyQueryParams {
		// url.ParseQuery refuses a query of too many parameters (10,000,
		// or GODEBUG urlmaxqueryparams): let it say, so that no handler
		// reading r.URL.Query() finds it empty.
		if _, err := url.ParseQuery(raw); err != nil {
			return fmt.Errorf("invalid query string: %w", err)
		}
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			return errors.New("invalid query string: invalid semicolon separator in query")
		}
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err := unescapeQuery(name)
		if err != nil {
			return fmt.Errorf("invalid query string: %w", err)
		}
		if value, err = unescapeQuery(value); err != nil {
			return fmt.Errorf("invalid query string: %w", err)
		}
		if err := fn(name, value); err != nil {
			return err
		}
	}
	return nil
}

// manyQueryParams is where eachQueryPair asks url.ParseQuery whether a
// query has too many parameters: far above any query of our routes.
const manyQueryParams = 64

// unescapeQuery is url.QueryUnescape, which copies, for a part that needs
// it.
func unescapeQuery(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// queryValue returns the first value of a query parameter, as
// r.URL.Query().Get does; checkRequestInput has refused a malformed query.
func queryValue(r *http.Request, name string) string {
	value := ""
	_ = eachQueryPair(r.URL.RawQuery, func(n, v string) error {
		if n == name {
			value = v
			return errFound
		}
		return nil
	})
	return value
}

var errFound = errors.New("found")

// checkText refuses invalid UTF-8 and control characters.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			if c == 0 {
				return errors.New("NUL bytes are not allowed")
			}
			return fmt.Errorf("control character %U is not allowed", c)
		}
	}
	return nil
}

// checkSurrogates refuses a JSON text whose strings hold an unpaired UTF-16
// surrogate escape such as "\ud800": decoding would silently replace it
// with U+FFFD.
func checkSurrogates(body []byte) error {
	if !bytes.Contains(body, []byte(`\u`)) {
		return nil
	}
	inString := false
	pendingHigh := false // the previous escape was a high surrogate
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch {
		case c == '"':
			if pendingHigh {
				return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
			}
			inString = false
		case c == '\\' && i+1 < len(body):
			i++
			if body[i] != 'u' {
				if pendingHigh {
					return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
				}
				continue
			}
			if i+4 >= len(body) {
				return nil // truncated: the decoder reports it
			}
			v, err := strconv.ParseUint(string(body[i+1:i+5]), 16, 16)
			if err != nil {
				return nil // malformed: the decoder reports it
			}
			i += 4
			switch {
			case v >= 0xd800 && v < 0xdc00:
				if pendingHigh {
					return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
				}
				pendingHigh = true
			case v >= 0xdc00 && v < 0xe000:
				if !pendingHigh {
					return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
				}
				pendingHigh = false
			default:
				if pendingHigh {
					return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
				}
			}
		default:
			if pendingHigh {
				return errors.New("a JSON string holds an unpaired UTF-16 surrogate escape")
			}
		}
	}
	return nil
}

// trimJSONSpace drops the whitespace JSON allows around a value (space,
// tab, newline, carriage return), and no other: bytes.TrimSpace would also
// drop a vertical tab or a form feed, and let such a body pass for empty.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\n\r") }

// strictUnmarshal decodes exactly one JSON object. Type mismatches name the
// field; trailing data and non-object bodies are errors.
func strictUnmarshal(body []byte, v any) error {
	body = trimJSONSpace(body)
	if len(body) == 0 {
		return errors.New("the body is empty; a JSON object is required")
	}
	if body[0] != '{' {
		return errors.New("the body must be a JSON object")
	}
	if err := checkSurrogates(body); err != nil {
		return err
	}
	// Unmarshal, not a Decoder: it reads the body in place (a Decoder
	// copies it into a buffer of its own) and refuses trailing data. A
	// type that decodes itself (a worker's signed messages) is called
	// directly: its own Unmarshal checks the body, so json.Unmarshal's
	// check before calling it would scan the body once more.
	var err error
	if u, ok := v.(json.Unmarshaler); ok {
		err = u.UnmarshalJSON(body)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
			return errors.New("unexpected data after the JSON object")
		}
		return err
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "float64", "float32", "int", "int64", "int32", "uint", "uint64":
		return "a number"
	}
	return goKind
}
