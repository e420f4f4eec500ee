// Package auth holds who may call the orchestrator: API clients from
// clients.toml and workers from workers.toml plus a global worker token.
// Tokens are kept as SHA-256 digests and compared in constant time; they
// never appear in errors or logs.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// Client is an API client.
type Client struct {
	Name            string
	Plan            string
	Params          map[string]any
	MonthlyAttempts int64 // job creations per calendar month (UTC); 0 means unlimited
	RateLimit       int   // requests per rate-limit period; 0 means the server default
	digest          [32]byte
}

// Client names the orchestrator owns jobs under itself. API clients cannot
// see those jobs, so no API client may carry one of these names: a client
// named "scheduler" would read and cancel every scheduled job.
const (
	SchedulerClient = "scheduler" // jobs the scheduler starts (schedules.toml)
	InternalClient  = "internal"  // jobs created from Go without WithClient
)

// ReservedClientNames lists the names no API client may have.
var ReservedClientNames = []string{SchedulerClient, InternalClient}

// reservedName returns the reserved name that name matches (in any letter
// case: "Scheduler" is refused too, to avoid confusing the two), or "".
func reservedName(name string) string {
	for _, r := range ReservedClientNames {
		if strings.EqualFold(strings.TrimSpace(name), r) {
			return r
		}
	}
	return ""
}

// errReserved explains a client name that is reserved.
func errReserved(name, reserved string) error {
	return fmt.Errorf("client %q: the name %q is reserved for the orchestrator's own jobs (reserved: %s); choose another name",
		name, reserved, strings.Join(ReservedClientNames, ", "))
}

// Clients is the set of API clients, safe for concurrent use and reloadable.
type Clients struct {
	mu      sync.RWMutex
	byToken map[[32]byte]*Client
}

// NewClients returns a set holding list. Each client's token is given in
// tokens, by client name.
func NewClients(list []Client, tokens map[string]string) (*Clients, error) {
	c := &Clients{}
	return c, c.Replace(list, tokens)
}

// Replace swaps the whole set atomically. A reserved name
// (ReservedClientNames) is an error.
func (c *Clients) Replace(list []Client, tokens map[string]string) error {
	byToken := make(map[[32]byte]*Client, len(list))
	for i := range list {
		cl := list[i]
		if r := reservedName(cl.Name); r != "" {
			return errReserved(cl.Name, r)
		}
		tok := tokens[cl.Name]
		if tok == "" {
			return fmt.Errorf("client %q has no token", cl.Name)
		}
		cl.digest = sha256.Sum256([]byte(tok))
		if _, dup := byToken[cl.digest]; dup {
			return fmt.Errorf("client %q shares its token with another client", cl.Name)
		}
		byToken[cl.digest] = &cl
	}
	c.mu.Lock()
	c.byToken = byToken
	c.mu.Unlock()
	return nil
}

// Lookup finds the client a token belongs to.
func (c *Clients) Lookup(token string) (*Client, bool) {
	if token == "" {
		return nil, false
	}
	d := sha256.Sum256([]byte(token))
	c.mu.RLock()
	cl, ok := c.byToken[d]
	c.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare(cl.digest[:], d[:]) != 1 {
		return nil, false
	}
	return cl, true
}

// List returns a copy of every client, in no particular order.
func (c *Clients) List() []Client {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Client, 0, len(c.byToken))
	for _, cl := range c.byToken {
		out = append(out, *cl)
	}
	return out
}

// Len returns the number of clients.
func (c *Clients) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byToken)
}

// LoadClients reads clients.toml: one table per client, named by the
// client, with token (required), plan, params (a table), monthly_attempts
// and rate_limit (integers). A missing file is an error, and so is a client
// with a reserved name (ReservedClientNames); an empty path yields no
// clients.
func LoadClients(path string) ([]Client, map[string]string, error) {
	if path == "" {
		return nil, map[string]string{}, nil
	}
	raw, err := readTables(path)
	if err != nil {
		return nil, nil, err
	}
	var list []Client
	tokens := map[string]string{}
	var errs []error
	for _, name := range sortedNames(raw) {
		t := raw[name]
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: client %q: %s", path, name, fmt.Sprintf(format, args...)))
		}
		if r := reservedName(name); r != "" {
			errs = append(errs, fmt.Errorf("%s: %w", path, errReserved(name, r)))
			continue
		}
		tok, ok := t["token"].(string)
		if !ok || tok == "" {
			bad("token must be a non-empty string")
			continue
		}
		cl := Client{Name: name}
		if v, ok := t["plan"]; ok {
			if cl.Plan, ok = v.(string); !ok {
				bad("plan must be a string")
			}
		}
		if v, ok := t["params"]; ok {
			if cl.Params, ok = v.(map[string]any); !ok {
				bad("params must be a table")
			}
		}
		if v, ok := t["monthly_attempts"]; ok {
			n, ok := v.(int64)
			if !ok || n < 0 {
				bad("monthly_attempts must be a non-negative integer")
			}
			cl.MonthlyAttempts = n
		}
		if v, ok := t["rate_limit"]; ok {
			n, ok := v.(int64)
			if !ok || n < 0 {
				bad("rate_limit must be a non-negative integer")
			}
			cl.RateLimit = int(n)
		}
		tokens[name] = tok
		list = append(list, cl)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return list, tokens, nil
}

// readTables decodes a TOML file whose top level holds only tables.
func readTables(path string) (map[string]map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var top map[string]any
	if _, err := toml.Decode(string(data), &top); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out := make(map[string]map[string]any, len(top))
	for name, v := range top {
		t, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q must be a table", path, name)
		}
		out[name] = t
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
