package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// playwrightVar names the folder e2e/install.sh fills with playwright-core.
const playwrightVar = "AVTO_TEST_PLAYWRIGHT"

// TestBrowser runs e2e/console.test.js in Debian's Chromium against an
// orchestrator with a worker and a history database: log in with a client
// token and see only its jobs, another client's job is not found, an
// action without the CSRF token is refused, approve from the page, a job's
// page reaches finished live without reload, bulk cancel by filter, retry
// a failed job from its page and see it run again, bulk retry by filter, a
// worker's reputation falls after failures; the job page's graph marks the
// current state, the queues page draws its charts, the workers page shows
// a worker that registers live, a worker's page charts its reputation, and
// no page breaks the Content-Security-Policy. With
// AVTO_CONSOLE_SCREENSHOTS set to a folder it saves screenshots of the main
// pages there (make console-screenshots).
func TestBrowser(t *testing.T) {
	chromium := testenv.URL(t, testenv.ChromiumVar)
	pw := os.Getenv(playwrightVar)
	if pw == "" {
		// .ci/run sets it in its own section, after make test.
		t.Skipf("%s is not set (internal/console/e2e/install.sh installs playwright-core; .ci/run runs this test)", playwrightVar)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	cfg := baseConfig()
	cfg.HistoryURI, cfg.GlobalWorkerToken = "sqlite:"+filepath.Join(t.TempDir(), "history.db"), "worker-token"
	// A schedule, so that the schedules page has a row at phone width.
	cfg.SchedulesFile = filepath.Join(t.TempDir(), "schedules.toml")
	if err := os.WriteFile(cfg.SchedulesFile, []byte("[nightly_review]\nblueprint = \"review\"\ninterval_seconds = 3600\nenabled = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := serve(t, cfg, workBlueprint(), strictBlueprint(), fanBlueprint())
	startWorker(t, base)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/console.test.js")
	// The script creates this file when it wants a worker to register.
	signal := filepath.Join(t.TempDir(), "register-worker")
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(signal); err == nil {
				startWorkerID(t, base, "live-worker")
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	cmd.Env = append(os.Environ(), "BASE="+base, "ALICE="+aliceToken, "BOB="+bobToken, "ADMIN="+adminToken, "REGISTER_WORKER="+signal,
		"CHROMIUM="+chromium, "PLAYWRIGHT="+pw)
	if dir := os.Getenv("AVTO_CONSOLE_SCREENSHOTS"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "SCREENSHOTS="+abs)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("browser tests:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
}
