package orchestrator

import (
	"strings"
	"testing"
	"time"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := configFrom(lookup(map[string]string{
		"API_PORT": "9090", "JOB_MAX_RETRIES": "0", "WORKER_TIMEOUT_SECONDS": "1.5", "RATE_LIMITING_ENABLED": "false",
		"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_DB": "2", "HISTORY_DATABASE_URI": "none", "LOG_FORMAT": "text",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9090" || cfg.MaxRetries != -1 || cfg.TaskTimeout != 1500*time.Millisecond || cfg.RateLimit != 0 ||
		cfg.RedisURL != "redis://cache:6380/2" || cfg.HistoryURI != "none" || cfg.Logger == nil {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = configFrom(lookup(nil))
	if err != nil || cfg.Addr != ":8080" || cfg.RateLimit != 600 || cfg.HistoryURI != "sqlite:avtomatika_history.db" || cfg.MaxRetries != 3 {
		t.Fatalf("defaults %+v %v", cfg, err)
	}
	cfg, _ = configFrom(lookup(map[string]string{"REDIS_URL": "redis://a:1/0", "REDIS_HOST": "b"}))
	if cfg.RedisURL != "redis://a:1/0" {
		t.Fatalf("REDIS_URL must win over REDIS_HOST: %q", cfg.RedisURL)
	}
	_, err = configFrom(lookup(map[string]string{"API_PORT": "http", "JOB_MAX_RETRIES": "-2", "RATE_LIMITING_ENABLED": "maybe", "LOG_LEVEL": "loud"}))
	for _, name := range []string{"API_PORT", "JOB_MAX_RETRIES", "RATE_LIMITING_ENABLED", "LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
