package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// records decodes one JSON object per line.
func records(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not a JSON record: %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestNewLoggerWritesJSONByDefault(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "json", "JSON"} {
		var out bytes.Buffer
		log, err := NewLogger(&out, "", format)
		if err != nil {
			t.Fatalf("format %q: %v", format, err)
		}
		log.Info("task dispatched", "job_id", "j-1", "task_id", "t-1", "worker_id", "w-1", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
		recs := records(t, &out)
		if len(recs) != 1 {
			t.Fatalf("format %q: %d records", format, len(recs))
		}
		rec := recs[0]
		for k, want := range map[string]string{"level": "INFO", "msg": "task dispatched", "job_id": "j-1", "task_id": "t-1",
			"worker_id": "w-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"} {
			if rec[k] != want {
				t.Errorf("format %q: %s = %v, want %q (record %v)", format, k, rec[k], want, rec)
			}
		}
		if _, ok := rec["time"].(string); !ok {
			t.Errorf("format %q: no time in %v", format, rec)
		}
	}
}

func TestNewLoggerText(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log, err := NewLogger(&out, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("job ended", "job_id", "j-2", "status", "finished")
	line := out.String()
	for _, want := range []string{"level=INFO", `msg="job ended"`, "job_id=j-2", "status=finished"} {
		if !strings.Contains(line, want) {
			t.Errorf("text record %q lacks %s", line, want)
		}
	}
	if json.Valid(bytes.TrimSpace(out.Bytes())) {
		t.Errorf("LOG_FORMAT=text wrote JSON: %q", line)
	}
}

func TestNewLoggerLevels(t *testing.T) {
	t.Parallel()
	emit := func(level string) []string {
		t.Helper()
		var out bytes.Buffer
		log, err := NewLogger(&out, level, "json")
		if err != nil {
			t.Fatalf("LOG_LEVEL=%q: %v", level, err)
		}
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		var msgs []string
		for _, rec := range records(t, &out) {
			msgs = append(msgs, rec["msg"].(string))
		}
		return msgs
	}
	for level, want := range map[string]string{
		"": "i w e", "debug": "d i w e", "DEBUG": "d i w e", "info": "i w e", "INFO": "i w e",
		"warn": "w e", "WARN": "w e", "error": "e", "ERROR": "e",
	} {
		if got := strings.Join(emit(level), " "); got != want {
			t.Errorf("LOG_LEVEL=%q logged %q, want %q", level, got, want)
		}
	}
}

func TestNewLoggerRefusesUnknownSettings(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := NewLogger(&out, "verbose", "json"); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("LOG_LEVEL=verbose: %v", err)
	}
	if _, err := NewLogger(&out, "info", "xml"); err == nil || !strings.Contains(err.Error(), "LOG_FORMAT") {
		t.Errorf("LOG_FORMAT=xml: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused configuration wrote %q", out.String())
	}
}

func TestRedisLoggerWarnsThroughSlog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log, err := NewLogger(&out, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	RedisLogger{Log: log}.Printf(context.Background(), "dial tcp %s: %s", "127.0.0.1:6379", "connection refused")
	recs := records(t, &out)
	if len(recs) != 1 || recs[0]["level"] != "WARN" || recs[0]["msg"] != "redis: dial tcp 127.0.0.1:6379: connection refused" {
		t.Fatalf("records %v", recs)
	}
}

func TestLoggerRedactsSecretKeys(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("registered", "worker_id", "w1", "token", "tok-123", "X-Client-Token", "ct-456",
		slog.Group("s3", "secret_key", "sk-789", "access_key", "ak-000", "bucket", "b"), "password", "pw", "signature_ok", true)
	out := buf.String()
	for _, secret := range []string{"tok-123", "ct-456", "sk-789", "ak-000", `"pw"`} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %s in the log: %s", secret, out)
		}
	}
	for _, kept := range []string{`"worker_id":"w1"`, `"bucket":"b"`, `"token":"[redacted]"`, `"signature_ok":true`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s missing from the log: %s", kept, out)
		}
	}
}
