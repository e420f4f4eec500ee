package watch

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// SummaryKey is the state_history entry that Summary prints when the job
// has one (the showcase's aggregated analysis report).
const SummaryKey = "analysis_summary"

// Summary prints how a job ended: its final status, then its error message
// when it has one, then state_history.analysis_summary when present, else
// its result. Strings are printed as they are; other values as indented
// JSON.
func Summary(w io.Writer, j *protocol.Job) error {
	if j == nil {
		return fmt.Errorf("summary: nil job")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Job %s: %s\n", j.ID, strings.ToUpper(string(j.Status)))
	if j.ErrorMessage != "" {
		fmt.Fprintf(&b, "Error: %s\n", j.ErrorMessage)
	}
	switch summary, ok := j.StateHistory[SummaryKey]; {
	case ok && summary != nil:
		if err := writeValue(&b, "Analysis summary", summary); err != nil {
			return err
		}
	case !empty(j.Result):
		if err := writeValue(&b, "Result", j.Result); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeValue writes "label: value" for a string or a scalar, and the label
// followed by indented JSON for objects and arrays.
func writeValue(b *strings.Builder, label string, v any) error {
	if s, ok := v.(string); ok {
		fmt.Fprintf(b, "%s: %s\n", label, s)
		return nil
	}
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: encode %s: %w", strings.ToLower(label), err)
	}
	switch v.(type) {
	case map[string]any, []any:
		fmt.Fprintf(b, "%s:\n%s\n", label, raw)
	default:
		fmt.Fprintf(b, "%s: %s\n", label, raw)
	}
	return nil
}

// empty reports whether a result says nothing: null, {} or [].
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
