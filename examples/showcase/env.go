package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/internal/webhook"
)

// showcaseEnv is the showcase's own configuration. The orchestrator and the
// workers read their usual variables on top of it.
type showcaseEnv struct {
	apiPort                int
	webhookPort            int
	orchestratorURL        string
	clientToken            string
	adminToken             string // ADMIN_TOKEN; the one-command run makes one up when unset
	webhookURL             string
	receiverHost           string // WEBHOOK_URL's host, allowed past the orchestrator's webhook egress policy
	webhookSecret          string
	globalWorkerToken      string
	blueprintName          string
	deterministicWorker    bool
	deterministicBlueprint bool
	timeScale              float64
	level                  string
}

func readEnv() (showcaseEnv, error) {
	var errs []string
	str := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	num := func(name string, def int) int {
		v := str(name, strconv.Itoa(def))
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Sprintf("%s=%q is not a port", name, v))
		}
		return n
	}
	flag := func(name string) bool {
		v := strings.ToLower(str(name, "false"))
		return v == "true" || v == "1" || v == "yes"
	}
	e := showcaseEnv{
		apiPort:                num("API_PORT", 8080),
		webhookPort:            num("WEBHOOK_PORT", 8000),
		clientToken:            str("CLIENT_TOKEN", "user_token_vip"),
		adminToken:             str("ADMIN_TOKEN", ""),
		webhookSecret:          str("WEBHOOK_SECRET", "showcase-webhook-secret"),
		globalWorkerToken:      str("GLOBAL_WORKER_TOKEN", "super-secret-worker-token"),
		blueprintName:          str("BLUEPRINT_NAME", "full_showcase"),
		deterministicWorker:    flag("DETERMINISTIC_WORKER"),
		deterministicBlueprint: flag("DETERMINISTIC_BLUEPRINT"),
		level:                  str("LOG_LEVEL", ""),
	}
	e.orchestratorURL = str("ORCHESTRATOR_URL", fmt.Sprintf("http://localhost:%d", e.apiPort))
	e.webhookURL = str("WEBHOOK_URL", fmt.Sprintf("http://localhost:%d/webhook", e.webhookPort))
	// The receiver is on loopback or a private network: the orchestrator
	// allows its host (on top of WEBHOOK_ALLOWED_HOSTS), and only that.
	if u, err := url.Parse(e.webhookURL); err != nil || u.Hostname() == "" {
		errs = append(errs, fmt.Sprintf("WEBHOOK_URL=%q is not an http(s) URL", e.webhookURL))
	} else if _, err := webhook.ParseAllowedHosts(u.Hostname()); err != nil {
		errs = append(errs, fmt.Sprintf("WEBHOOK_URL=%q: %v", e.webhookURL, err))
	} else {
		e.receiverHost = u.Hostname()
	}
	scale, err := strconv.ParseFloat(str("SHOWCASE_TIME_SCALE", "1"), 64)
	if err != nil || scale <= 0 {
		errs = append(errs, "SHOWCASE_TIME_SCALE must be a positive number")
	}
	e.timeScale = scale
	if len(errs) > 0 {
		return e, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return e, nil
}

// logLevel is LOG_LEVEL, or def when it is not set.
func (e showcaseEnv) logLevel(def string) slog.Level {
	v := e.level
	if v == "" {
		v = def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return slog.LevelInfo
	}
	return l
}
