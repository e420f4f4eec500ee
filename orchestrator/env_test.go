package orchestrator

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
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
	if cfg.RecentJobs != 4096 {
		t.Fatalf("RECENT_JOBS default %d", cfg.RecentJobs)
	}
	if cfg, _ = configFrom(lookup(map[string]string{"RECENT_JOBS": "0"})); cfg.RecentJobs != -1 {
		t.Fatalf("RECENT_JOBS=0 gives %d, want -1 (none)", cfg.RecentJobs)
	}
	cfg, _ = configFrom(lookup(map[string]string{"REDIS_URL": "redis://a:1/0", "REDIS_HOST": "b"}))
	if cfg.RedisURL != "redis://a:1/0" || cfg.RedisCluster || cfg.RedisShards != 1 {
		t.Fatalf("REDIS_URL must win over REDIS_HOST, one server and one shard by default: %q %v %d", cfg.RedisURL, cfg.RedisCluster, cfg.RedisShards)
	}
	cfg, _ = configFrom(lookup(map[string]string{"REDIS_URL": "redis://a:7000?addr=b:7001", "REDIS_CLUSTER": "true", "REDIS_SHARDS": "16"}))
	if !cfg.RedisCluster || cfg.RedisShards != 16 {
		t.Fatalf("REDIS_CLUSTER, REDIS_SHARDS: %v %d", cfg.RedisCluster, cfg.RedisShards)
	}
	_, err = configFrom(lookup(map[string]string{"API_PORT": "http", "JOB_MAX_RETRIES": "-2", "RATE_LIMITING_ENABLED": "maybe", "LOG_LEVEL": "loud"}))
	for _, name := range []string{"API_PORT", "JOB_MAX_RETRIES", "RATE_LIMITING_ENABLED", "LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestConfigFromEnvBlobs(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(lookup(nil))
	if err != nil || cfg.BlobDir != "avtomatika_blobs" || cfg.S3.Configured() || cfg.OffloadThreshold != 1<<20 || cfg.KeepBlobs ||
		cfg.MaxUploadBytes != 5<<30 || cfg.S3.Bucket != "avtomatika-payloads" || cfg.S3.Region != "us-east-1" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = configFrom(lookup(map[string]string{
		"S3_ENDPOINT_URL": "http://127.0.0.1:9000", "S3_ACCESS_KEY": "key", "S3_SECRET_KEY": "secret-value", "S3_DEFAULT_BUCKET": "payloads",
		"S3_REGION": "eu-west-1", "S3_FORCE_PATH_STYLE": "true", "S3_OFFLOAD_THRESHOLD": "0", "S3_AUTO_CLEANUP": "false",
		"MAX_UPLOAD_BYTES": "1000", "BLOB_DIR": "none", "PUBLIC_URL": "https://orch.example/",
	}))
	if err != nil || !cfg.S3.Configured() || cfg.S3.Bucket != "payloads" || cfg.S3.Region != "eu-west-1" || cfg.S3.PathStyle != "path" ||
		cfg.OffloadThreshold != -1 || !cfg.KeepBlobs || cfg.MaxUploadBytes != 1000 || cfg.BlobDir != "" || cfg.PublicURL != "https://orch.example" {
		t.Fatalf("S3 config: %+v %v", cfg, err)
	}
	if strings.Contains(cfg.S3.String(), "secret-value") || strings.Contains(fmt.Sprintf("%#v %v", cfg.S3, cfg.S3), "secret-value") {
		t.Fatal("the secret key is printed")
	}
	_, err = configFrom(lookup(map[string]string{"S3_ENDPOINT_URL": "ftp://x", "S3_FORCE_PATH_STYLE": "sideways"}))
	for _, name := range []string{"S3_", "S3_FORCE_PATH_STYLE", "S3_ACCESS_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestConfigFromEnvWebhookAllowedHosts(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(lookup(nil))
	if err != nil || cfg.WebhookAllowedHosts != nil {
		t.Fatalf("default: %q %v", cfg.WebhookAllowedHosts, err)
	}
	cfg, err = configFrom(lookup(map[string]string{"WEBHOOK_ALLOWED_HOSTS": " 127.0.0.1/32, Receiver.Internal ,10.1.2.3,fd00::/8"}))
	if want := []string{"127.0.0.1/32", "receiver.internal", "10.1.2.3/32", "fd00::/8"}; err != nil || !slices.Equal(cfg.WebhookAllowedHosts, want) {
		t.Fatalf("WebhookAllowedHosts = %q, %v; want %q", cfg.WebhookAllowedHosts, err, want)
	}
	for _, bad := range []string{"http://receiver.internal", "receiver.internal:8443", "10.0.0.0/40", "*.internal", "a b"} {
		_, err := configFrom(lookup(map[string]string{"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1," + bad}))
		if err == nil || !strings.Contains(err.Error(), "WEBHOOK_ALLOWED_HOSTS") || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v does not name the variable and the entry", bad, err)
		}
	}
}

func TestConfigFromEnvReputation(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(lookup(map[string]string{"REPUTATION_RECOVERY_PER_HOUR": "0.5", "REPUTATION_CLIENT_PENALTY_CAP": "0.2"}))
	if err != nil || cfg.ReputationRecoveryPerHour != 0.5 || cfg.ReputationClientCap != 0.2 {
		t.Fatalf("config %+v %v", cfg, err)
	}
	if _, err := configFrom(lookup(map[string]string{"REPUTATION_CLIENT_PENALTY_CAP": "lots"})); err == nil ||
		!strings.Contains(err.Error(), "REPUTATION_CLIENT_PENALTY_CAP") {
		t.Fatalf("a bad cap: %v", err)
	}
}

func TestConfigFromEnvConnectionLimits(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(lookup(nil))
	if err != nil || cfg.RequestBodyTimeout != time.Minute || cfg.MaxConnections != 10000 || cfg.MaxConnectionsPerIP != 1000 {
		t.Fatalf("defaults: %v %d %d %v", cfg.RequestBodyTimeout, cfg.MaxConnections, cfg.MaxConnectionsPerIP, err)
	}
	cfg, err = configFrom(lookup(map[string]string{"REQUEST_BODY_TIMEOUT": "2.5", "MAX_CONNECTIONS": "50", "MAX_CONNECTIONS_PER_IP": "5"}))
	if err != nil || cfg.RequestBodyTimeout != 2500*time.Millisecond || cfg.MaxConnections != 50 || cfg.MaxConnectionsPerIP != 5 {
		t.Fatalf("set: %v %d %d %v", cfg.RequestBodyTimeout, cfg.MaxConnections, cfg.MaxConnectionsPerIP, err)
	}
	cfg, err = configFrom(lookup(map[string]string{"REQUEST_BODY_TIMEOUT": "0", "MAX_CONNECTIONS": "0", "MAX_CONNECTIONS_PER_IP": "0"}))
	if err != nil || cfg.RequestBodyTimeout >= 0 || cfg.MaxConnections >= 0 || cfg.MaxConnectionsPerIP >= 0 {
		t.Fatalf("0 turns a limit off: %v %d %d %v", cfg.RequestBodyTimeout, cfg.MaxConnections, cfg.MaxConnectionsPerIP, err)
	}
	_, err = configFrom(lookup(map[string]string{"REQUEST_BODY_TIMEOUT": "soon", "MAX_CONNECTIONS": "-1", "MAX_CONNECTIONS_PER_IP": "many"}))
	for _, name := range []string{"REQUEST_BODY_TIMEOUT", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_IP"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// TestConfigFromEnvMetricsWorkerLabels: per-worker metric series are off
// unless METRICS_WORKER_LABELS turns them on, and then bounded.
func TestConfigFromEnvMetricsWorkerLabels(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(lookup(nil))
	if err != nil || cfg.MetricsWorkerLabels || cfg.MetricsWorkerLabelsMax != 100 {
		t.Fatalf("defaults: %v %d %v", cfg.MetricsWorkerLabels, cfg.MetricsWorkerLabelsMax, err)
	}
	cfg, err = configFrom(lookup(map[string]string{"METRICS_WORKER_LABELS": "true", "METRICS_WORKER_LABELS_MAX": "25"}))
	if err != nil || !cfg.MetricsWorkerLabels || cfg.MetricsWorkerLabelsMax != 25 {
		t.Fatalf("on: %v %d %v", cfg.MetricsWorkerLabels, cfg.MetricsWorkerLabelsMax, err)
	}
	_, err = configFrom(lookup(map[string]string{"METRICS_WORKER_LABELS": "sometimes", "METRICS_WORKER_LABELS_MAX": "-1"}))
	for _, name := range []string{"METRICS_WORKER_LABELS=", "METRICS_WORKER_LABELS_MAX"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
