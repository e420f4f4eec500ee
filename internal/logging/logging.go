// Package logging builds the structured loggers of the orchestrator and the
// worker SDK and redacts secrets from their records. It imports nothing of
// the orchestrator, so that the worker SDK can use it without linking the
// engine.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger builds the structured logger of LOG_LEVEL (debug, info, warn,
// error) and LOG_FORMAT (json or text). Records carry job_id, task_id,
// worker_id and trace_id attributes where the code knows them.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if level != "" {
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: Redact}
	switch strings.ToLower(format) {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT=%q: want json or text", format)
}

// Redact, a slog.HandlerOptions.ReplaceAttr, blanks text attributes whose
// key names a secret: a safety net under the rule that no code logs a
// token, password or key (flags such as signature_ok=true stay).
func Redact(_ []string, a slog.Attr) slog.Attr {
	if k := a.Value.Kind(); (k == slog.KindString || k == slog.KindAny) && secretKey(a.Key) {
		return slog.String(a.Key, "[redacted]")
	}
	return a
}

func secretKey(key string) bool {
	k := strings.ToLower(key)
	for _, word := range []string{"token", "secret", "password", "passwd", "signature", "authorization", "api_key", "apikey", "access_key", "private_key"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}

// RedisLogger adapts slog to go-redis' logger (redis.SetLogger), whose
// messages (dial failures while Redis is away) would otherwise go to stderr
// unstructured.
type RedisLogger struct{ Log *slog.Logger }

// Printf implements go-redis' internal.Logging.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
