// Package offload moves large JSON values (task params, result data) to
// blob storage and back. A moved value is replaced by its s3:// URI, and its
// FileMetadata carries the marker {"inline": true, "encoding": "json"}, so
// that a worker of our SDK puts the decoded value back before the handler
// runs (and the orchestrator knows the object holds JSON, not a file). A
// worker without that support (the Python SDK) downloads the object like
// any s3:// param and gets the path of a .json file.
package offload

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Keys of the marker in FileMetadata.Metadata.
const (
	MetaInline   = "inline"
	MetaEncoding = "encoding"
	EncodingJSON = "json"
)

// DefaultThreshold is the params or data size (JSON bytes) above which
// values are offloaded (S3_OFFLOAD_THRESHOLD).
const DefaultThreshold = 1 << 20

// minValue is the smallest value worth replacing by a reference.
const minValue = 256

// Marker returns the metadata that marks an offloaded JSON value.
func Marker() map[string]any { return map[string]any{MetaInline: true, MetaEncoding: EncodingJSON} }

// IsInlineJSON reports whether md describes an offloaded JSON value.
func IsInlineJSON(md protocol.FileMetadata) bool {
	inline, _ := md.Metadata[MetaInline].(bool)
	enc, _ := md.Metadata[MetaEncoding].(string)
	return inline && enc == EncodingJSON
}

// MayExceed reports whether the JSON encoding of m may be longer than limit
// bytes. false is certain; true means "measure it". It walks plain JSON
// values (maps, slices, strings, numbers) without allocating and stops as
// soon as the bound passes the limit, so calling it on every dispatch is
// cheap.
func MayExceed(m map[string]any, limit int64) bool {
	return bound(m, limit) < 0
}

// bound subtracts an upper bound of v's encoded length from budget and
// returns what is left; it stops early once the result is negative.
func bound(v any, budget int64) int64 {
	switch x := v.(type) {
	case nil:
		return budget - 4
	case bool:
		return budget - 5
	case string:
		return budget - strBound(x)
	case float64, float32:
		return budget - 25
	case int, int64, int32, int16, int8, uint, uint64, uint32, uint16, uint8:
		return budget - 20
	case json.Number:
		return budget - int64(len(x))
	case map[string]any:
		budget -= 2
		for k, e := range x {
			budget -= strBound(k) + 2
			if budget = bound(e, budget); budget < 0 {
				return budget
			}
		}
		return budget
	case []any:
		budget -= 2
		for _, e := range x {
			if budget = bound(e, budget-1); budget < 0 {
				return budget
			}
		}
		return budget
	case []string:
		budget -= 2
		for _, e := range x {
			if budget -= strBound(e) + 1; budget < 0 {
				return budget
			}
		}
		return budget
	case map[string]string:
		budget -= 2
		for k, e := range x {
			if budget -= strBound(k) + strBound(e) + 2; budget < 0 {
				return budget
			}
		}
		return budget
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return budget // not JSON: the encoder will say so later
	}
	return budget - int64(len(raw))
}

// strBound is an upper bound of the encoded length of s: escapes take up to
// six bytes per input byte (control characters, <, >, &, and bytes of
// non-ASCII or invalid UTF-8, which become \ufffd at worst).
func strBound(s string) int64 {
	n := int64(2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '<', c == '>', c == '&', c >= 0x80:
			n += 6
		case c == '"', c == '\\':
			n += 2
		default:
			n++
		}
	}
	return n
}

// encode is the JSON of a value as stored.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Values moves the largest top-level values of m to st, as JSON objects
// under keyOf(name), until the rest of m encodes to at most threshold bytes
// (values under a few hundred bytes stay). m is changed only when every
// upload succeeded: moved values become their s3:// URIs. It returns the
// FileMetadata (with the marker) of each moved value by name, or nil when
// nothing had to move.
func Values(ctx context.Context, st blob.Store, m map[string]any, threshold int64, keyOf func(name string) string) (map[string]protocol.FileMetadata, error) {
	if threshold < 0 || !MayExceed(m, threshold) {
		return nil, nil
	}
	type sized struct {
		name string
		raw  []byte
	}
	vals := make([]sized, 0, len(m))
	total := int64(2)
	for name, v := range m {
		raw, err := encode(v)
		if err != nil {
			return nil, fmt.Errorf("encode %q: %w", name, err)
		}
		vals = append(vals, sized{name, raw})
		total += int64(len(strconv.Quote(name))) + 1 + int64(len(raw)) + 1
	}
	if total <= threshold {
		return nil, nil
	}
	// Largest first; ties by name, so that the choice is deterministic.
	slices.SortFunc(vals, func(a, b sized) int {
		return cmp.Or(cmp.Compare(len(b.raw), len(a.raw)), cmp.Compare(a.name, b.name))
	})
	out := map[string]protocol.FileMetadata{}
	for _, v := range vals {
		if total <= threshold || len(v.raw) < minValue {
			break
		}
		key := keyOf(v.name)
		info, err := st.Put(ctx, key, bytes.NewReader(v.raw), int64(len(v.raw)), blob.PutOptions{ContentType: "application/json"})
		if err != nil {
			return nil, fmt.Errorf("offload %q (%d bytes): %w", v.name, len(v.raw), err)
		}
		uri := blob.NewURI(st.Bucket(), key)
		out[v.name] = protocol.FileMetadata{URI: uri, Size: info.Size, ETag: info.ETag, Metadata: Marker()}
		total -= int64(len(v.raw)) - int64(len(strconv.Quote(uri)))
	}
	for name, md := range out {
		m[name] = md.URI
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ObjectName is the file name under which a value called name is stored:
// the escaped name plus ".json", or a hash for very long names.
func ObjectName(name string) string {
	esc := url.PathEscape(name)
	if len(esc) > 120 {
		sum := sha256.Sum256([]byte(name))
		esc = hex.EncodeToString(sum[:16])
	}
	return esc + ".json"
}
