package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
)

// Worker authentication failures. Their texts start with "Unauthorized", as
// upstream's do, so that Python workers recognise them.
var (
	ErrMissingToken  = errors.New("Unauthorized: Missing X-Worker-Token header")
	ErrMissingID     = errors.New("Unauthorized: Missing X-Worker-ID header")
	ErrInvalidToken  = errors.New("Unauthorized: Invalid individual worker token")
	ErrNoValidToken  = errors.New("Unauthorized: No valid token found")
	ErrForeignToken  = errors.New("Unauthorized: the token belongs to another worker")
	ErrGlobalDisable = errors.New("Unauthorized: no global worker token is configured")
)

type workerToken struct {
	pattern string // exact id, or a glob when it holds * ? [
	digest  [32]byte
	token   string // the signing key
}

// WorkerTokens authenticates workers: an individual token from
// workers.toml (exact id first, then glob patterns such as cpu-worker-*),
// else the global token.
type WorkerTokens struct {
	mu       sync.RWMutex
	exact    map[string]workerToken
	patterns []workerToken
	global   workerToken
}

// NewWorkerTokens returns tokens for the given id (or glob) → token map and
// global token (empty disables it).
func NewWorkerTokens(individual map[string]string, global string) *WorkerTokens {
	w := &WorkerTokens{}
	w.Replace(individual, global)
	return w
}

// Replace swaps the configuration atomically.
func (w *WorkerTokens) Replace(individual map[string]string, global string) {
	exact := map[string]workerToken{}
	var patterns []workerToken
	for _, id := range sortedNames(individual) {
		t := workerToken{pattern: id, digest: sha256.Sum256([]byte(individual[id])), token: individual[id]}
		if strings.ContainsAny(id, "*?[") {
			patterns = append(patterns, t)
		} else {
			exact[id] = t
		}
	}
	g := workerToken{}
	if global != "" {
		g = workerToken{digest: sha256.Sum256([]byte(global)), token: global}
	}
	w.mu.Lock()
	w.exact, w.patterns, w.global = exact, patterns, g
	w.mu.Unlock()
}

// Len returns the number of individual entries.
func (w *WorkerTokens) Len() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.exact) + len(w.patterns)
}

// individual returns the individual entry of a worker id, if any.
func (w *WorkerTokens) individual(id string) (workerToken, bool) {
	if t, ok := w.exact[id]; ok {
		return t, true
	}
	for _, t := range w.patterns {
		if ok, _ := path.Match(t.pattern, id); ok {
			return t, true
		}
	}
	return workerToken{}, false
}

// SigningKey returns the master token that signs a worker's messages: its
// individual token, else the global one.
func (w *WorkerTokens) SigningKey(id string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if t, ok := w.individual(id); ok {
		return t.token
	}
	return w.global.token
}

// Authenticate checks a worker's static token. A worker with an individual
// token must use it; others may use the global token.
func (w *WorkerTokens) Authenticate(id, token string) error {
	if token == "" {
		return ErrMissingToken
	}
	if id == "" {
		return ErrMissingID
	}
	d := sha256.Sum256([]byte(token))
	w.mu.RLock()
	defer w.mu.RUnlock()
	if t, ok := w.individual(id); ok {
		if subtle.ConstantTimeCompare(t.digest[:], d[:]) != 1 {
			return ErrInvalidToken
		}
		return nil
	}
	if w.global.token == "" {
		return ErrNoValidToken
	}
	if subtle.ConstantTimeCompare(w.global.digest[:], d[:]) != 1 {
		return ErrNoValidToken
	}
	return nil
}

// LoadWorkers reads workers.toml: one table per worker id (or glob such as
// "cpu-worker-*") with a token. An empty path yields no entries.
func LoadWorkers(file string) (map[string]string, error) {
	if file == "" {
		return map[string]string{}, nil
	}
	raw, err := readTables(file)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var errs []error
	for _, id := range sortedNames(raw) {
		tok, ok := raw[id]["token"].(string)
		if !ok || tok == "" {
			errs = append(errs, fmt.Errorf("%s: worker %q: token must be a non-empty string", file, id))
			continue
		}
		if _, err := path.Match(id, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: worker %q: bad pattern: %v", file, id, err))
			continue
		}
		out[id] = tok
	}
	return out, errors.Join(errs...)
}
