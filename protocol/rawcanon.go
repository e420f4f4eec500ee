package protocol

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// rawCanon writes the canonical form of valid JSON (json.Valid) straight
// from its bytes, without decoding it into maps first: every message is
// canonicalized on each side of each exchange, and the maps were most of
// its cost. The result is that of Canonical(DecodeJSON(raw)); FuzzRawCanon
// checks it against that.
type rawCanon struct {
	out *bytes.Buffer // where the value being read is written
	// Per object nesting level: its members' canonical values until they
	// are sorted, and the members.
	values  []*bytes.Buffer
	members [][]member
	depth   int
}

var rawCanonPool = sync.Pool{New: func() any { return new(rawCanon) }}

// canonicalValid returns the canonical form of raw, which must be valid
// JSON, with the named top-level members removed.
func canonicalValid(raw []byte, drop []string) ([]byte, error) {
	c := rawCanonPool.Get().(*rawCanon)
	defer rawCanonPool.Put(c)
	out := bytes.NewBuffer(make([]byte, 0, len(raw)))
	c.out = out
	if _, err := c.value(raw, drop); err != nil {
		return nil, err
	}
	c.out = nil
	return out.Bytes(), nil
}

// member is an object member: its decoded key and where its canonical
// value lies in its level's values.
type member struct {
	key        []byte
	start, end int
	null       bool
}

// value writes the value at the start of data (after any space) and
// returns what follows it. drop applies to this value's members only.
func (c *rawCanon) value(data []byte, drop []string) ([]byte, error) {
	data = skipSpace(data)
	switch data[0] {
	case '{':
		return c.object(data[1:], drop)
	case '[':
		return c.array(data[1:])
	case '"':
		s, rest, err := readString(data)
		if err != nil {
			return nil, err
		}
		writeString(c.out, s)
		return rest, nil
	case 't':
		c.out.WriteString("true")
		return data[4:], nil
	case 'f':
		c.out.WriteString("false")
		return data[5:], nil
	case 'n':
		c.out.WriteString("null")
		return data[4:], nil
	}
	n := numberLen(data)
	if bytes.IndexAny(data[:n], ".eE") < 0 {
		c.out.Write(data[:n]) // a valid integer literal is canonical
		return data[n:], nil
	}
	if err := writeNumber(c.out, json.Number(data[:n])); err != nil {
		return nil, err
	}
	return data[n:], nil
}

func (c *rawCanon) object(data []byte, drop []string) ([]byte, error) {
	d := c.depth
	if d == len(c.values) {
		c.values, c.members = append(c.values, new(bytes.Buffer)), append(c.members, nil)
	}
	values, members := c.values[d], c.members[d][:0]
	values.Reset()
	out := c.out
	c.out, c.depth = values, d+1
	defer func() { c.out, c.depth = out, d }()
	for {
		data = skipSpace(data)
		if data[0] == '}' {
			data = data[1:]
			break
		}
		if data[0] == ',' {
			data = skipSpace(data[1:])
		}
		key, rest, err := readString(data)
		if err != nil {
			return nil, err
		}
		rest = skipSpace(rest)[1:] // the colon
		if slices.Contains(drop, string(key)) {
			data = skipValue(rest) // unread, as if it were not there
			continue
		}
		start := values.Len()
		if data, err = c.value(rest, nil); err != nil {
			return nil, err
		}
		null := string(values.Bytes()[start:]) == "null"
		members = append(members, member{key: key, start: start, end: values.Len(), null: null})
	}
	c.members[d] = members
	// A repeated key keeps its last value, as decoding into a map does;
	// null members are left out.
	slices.SortStableFunc(members, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	out.WriteByte('{')
	first := true
	for i, m := range members {
		if m.null || (i+1 < len(members) && bytes.Equal(members[i+1].key, m.key)) {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		writeString(out, m.key)
		out.WriteByte(':')
		out.Write(values.Bytes()[m.start:m.end])
	}
	out.WriteByte('}')
	return data, nil
}

func (c *rawCanon) array(data []byte) ([]byte, error) {
	c.out.WriteByte('[')
	for i := 0; ; i++ {
		data = skipSpace(data)
		if data[0] == ']' {
			c.out.WriteByte(']')
			return data[1:], nil
		}
		if data[0] == ',' {
			data = data[1:]
		}
		if i > 0 {
			c.out.WriteByte(',')
		}
		var err error
		if data, err = c.value(data, nil); err != nil {
			return nil, err
		}
	}
}

func skipSpace(data []byte) []byte {
	for len(data) > 0 && (data[0] == ' ' || data[0] == '\t' || data[0] == '\n' || data[0] == '\r') {
		data = data[1:]
	}
	return data
}

// readString reads the string literal at the start of data and returns
// its value and what follows it. A literal without escapes is its own
// bytes; one with escapes or invalid UTF-8 (which decoding replaces, and
// two keys may then be one) goes through encoding/json.
func readString(data []byte) ([]byte, []byte, error) {
	end := closingQuote(data, 0)
	lit, rest := data[:end+1], data[end+1:]
	if s := lit[1:end]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s, rest, nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return nil, nil, err
	}
	return []byte(s), rest, nil
}

// skipValue returns what follows the value at the start of data.
func skipValue(data []byte) []byte {
	data = skipSpace(data)
	switch data[0] {
	case '"':
		return data[closingQuote(data, 0)+1:]
	case '{', '[':
		depth := 0
		for i := 0; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = closingQuote(data, i)
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return data[i+1:]
				}
			}
		}
		return nil
	}
	i := 0 // a number or a literal
	for i < len(data) && strings.IndexByte(",}] \t\n\r", data[i]) < 0 {
		i++
	}
	return data[i:]
}

// closingQuote is the index of the quote that ends the string literal
// starting at data[open].
func closingQuote(data []byte, open int) int {
	i := open + 1
	for ; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i
}

// numberLen is the length of the number literal at the start of data.
func numberLen(data []byte) int {
	n := 0
	for n < len(data) && strings.IndexByte("+-0123456789.eE", data[n]) >= 0 {
		n++
	}
	return n
}
