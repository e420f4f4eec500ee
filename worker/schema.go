package worker

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// normalizeSchema checks a schema and returns it as plain decoded JSON, so
// that Go values such as []string{"a"} read like JSON arrays.
func normalizeSchema(schema map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	doc, err := protocol.DecodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if err := checkSchemaNode(doc, "schema"); err != nil {
		return nil, err
	}
	return doc.(map[string]any), nil
}

func checkSchemaNode(node any, path string) error {
	m, ok := node.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a schema must be an object", path)
	}
	if t, ok := m["type"]; ok {
		for _, name := range typeNames(t) {
			if !slices.Contains([]string{"object", "array", "string", "integer", "number", "boolean", "null"}, name) {
				return fmt.Errorf("%s: unknown type %q", path, name)
			}
		}
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for k, sub := range props {
			if err := checkSchemaNode(sub, path+".properties."+k); err != nil {
				return err
			}
		}
	}
	if items, ok := m["items"]; ok {
		if err := checkSchemaNode(items, path+".items"); err != nil {
			return err
		}
	}
	if subs, ok := m["anyOf"].([]any); ok {
		for i, sub := range subs {
			if err := checkSchemaNode(sub, fmt.Sprintf("%s.anyOf[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func typeNames(t any) []string {
	switch x := t.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// validateJSON checks a JSON document (decoded with json.Number, as
// protocol.DecodeJSON does) against the RXON schema subset: type,
// properties, required, additionalProperties: false, items, enum, anyOf.
// Other keywords are ignored, like upstream.
func validateJSON(v any, schema map[string]any, path string) error {
	if t, ok := schema["type"]; ok {
		names := typeNames(t)
		if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return hasType(v, n) }) {
			return fmt.Errorf("%s: expected %s, got %s", path, strings.Join(names, " or "), jsonTypeOf(v))
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		want, _ := protocol.Canonical(v)
		found := false
		for _, e := range enum {
			got, _ := protocol.Canonical(e)
			if string(got) == string(want) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: value %s is not one of the allowed values", path, want)
		}
	}
	if anyOf, ok := schema["anyOf"].([]any); ok && len(anyOf) > 0 {
		var first error
		matched := false
		for _, sub := range anyOf {
			sm, _ := sub.(map[string]any)
			err := validateJSON(v, sm, path)
			if err == nil {
				matched = true
				break
			}
			if first == nil {
				first = err
			}
		}
		if !matched {
			return fmt.Errorf("%s: matches none of anyOf (%v)", path, first)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if k, ok := r.(string); ok {
					if _, present := x[k]; !present {
						return fmt.Errorf("%s: missing required field %q", path, k)
					}
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub, declared := props[k]
			if !declared {
				if ap, ok := schema["additionalProperties"]; ok {
					if b, isBool := ap.(bool); isBool && !b {
						return fmt.Errorf("%s: unexpected field %q", path, k)
					}
					if sm, ok := ap.(map[string]any); ok {
						if err := validateJSON(x[k], sm, path+"."+k); err != nil {
							return err
						}
					}
				}
				continue
			}
			if sm, ok := sub.(map[string]any); ok {
				if err := validateJSON(x[k], sm, path+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				if err := validateJSON(e, items, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hasType(v any, name string) bool {
	switch name {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	}
	return false
}

func jsonTypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "number"
		}
		return "integer"
	}
	return fmt.Sprintf("%T", v)
}
