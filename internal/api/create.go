package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// upstreamCreateFields names the top-level fields upstream's create
// handler reads. initial_data, webhook_url and policy are used; the others
// are accepted so that a body written for upstream is not refused, and do
// nothing here (README, compatibility).
const upstreamCreateFields = "initial_data, webhook_url, dispatch_timeout, result_timeout, security, metadata, policy, max_transitions"

// isUpstreamCreateField reports whether a top-level create field is one
// of upstreamCreateFields.
func isUpstreamCreateField(name string) bool {
	switch name {
	case "initial_data", "webhook_url", "dispatch_timeout", "result_timeout", "security", "metadata", "policy", "max_transitions":
		return true
	}
	return false
}

// parseCreateBody reads a job creation body. A body that names none of
// upstream's create fields is the initial data itself ({"quality":"low"});
// one that names any of them is the wrapper, and then a field that is not
// one of them is refused by name (a misspelt "webhok_url" would otherwise be
// dropped without a word). An empty body is a job without input.
func parseCreateBody(body []byte) (protocol.CreateJobRequest, error) {
	var req protocol.CreateJobRequest
	if len(trimJSONSpace(body)) == 0 {
		req.InitialData = map[string]any{}
		return req, nil
	}
	var fields map[string]json.RawMessage
	if err := strictUnmarshal(body, &fields); err != nil {
		return req, err
	}
	var unknown []string
	wrapped := false
	for name := range fields {
		if isUpstreamCreateField(name) {
			wrapped = true
		} else {
			unknown = append(unknown, name)
		}
	}
	if !wrapped {
		if err := strictUnmarshal(body, &req.InitialData); err != nil {
			return req, err
		}
		return req, nil
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return req, fmt.Errorf("unknown field %q: a body with %s takes only the fields %s (send the input alone, or inside initial_data)",
			unknown[0], quoteList(wrapperFieldsIn(fields)), upstreamCreateFields)
	}
	if err := strictUnmarshal(body, &req); err != nil {
		return req, err
	}
	if req.InitialData == nil {
		req.InitialData = map[string]any{}
	}
	if raw, ok := fields["policy"]; ok && string(raw) != "null" {
		if err := checkPolicy(raw, req.Policy); err != nil {
			return req, err
		}
	}
	return req, nil
}

// checkPolicy refuses a policy over protocol.MaxPolicyBytes and an
// allowed_skills that is not a non-empty list of strings, as upstream does.
func checkPolicy(raw json.RawMessage, policy map[string]any) error {
	if n := len(trimJSONSpace(raw)); n > protocol.MaxPolicyBytes {
		return fmt.Errorf("field \"policy\" is %d bytes, over the limit of %d", n, protocol.MaxPolicyBytes)
	}
	v, ok := policy["allowed_skills"]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return errors.New("field \"policy.allowed_skills\" must be a non-empty list of strings")
	}
	for _, s := range list {
		if _, ok := s.(string); !ok {
			return errors.New("field \"policy.allowed_skills\" must be a non-empty list of strings")
		}
	}
	return nil
}

// wrapperFieldsIn names the upstream fields a body holds, sorted.
func wrapperFieldsIn(fields map[string]json.RawMessage) []string {
	var names []string
	for name := range fields {
		if isUpstreamCreateField(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
