package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerRedactsSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Setenv("LOG_FORMAT", format)
		var out bytes.Buffer
		newLogger(&out, slog.LevelInfo).Info("registered", "worker_id", "gpu-worker-01", "token", "super-secret-worker-token")
		got := out.String()
		if strings.Contains(got, "super-secret-worker-token") || !strings.Contains(got, "[redacted]") || !strings.Contains(got, "gpu-worker-01") {
			t.Errorf("LOG_FORMAT=%s: %s", format, got)
		}
		if isJSON := strings.HasPrefix(got, "{"); isJSON != (format == "json") {
			t.Errorf("LOG_FORMAT=%s wrote %s", format, got)
		}
	}
}
