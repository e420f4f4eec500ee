package api

import (
	"context"
	"html"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// TestDocsPageRendersInChromium loads /_public/docs in headless Chromium
// and checks that Swagger UI rendered every documented route.
func TestDocsPageRendersInChromium(t *testing.T) {
	t.Parallel()
	chromium := testenv.URL(t, testenv.ChromiumVar)
	ts := newTestServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=20000", "--dump-dom", ts.http.URL+"/_public/docs")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := html.UnescapeString(string(out))
	if !strings.Contains(dom, "Avtomatika orchestrator") {
		t.Fatalf("the page did not render the API title; DOM starts: %.2000s", dom)
	}
	for _, rt := range ts.srv.routeTable() {
		if rt.hidden {
			continue
		}
		if !strings.Contains(dom, `data-path="`+docPath(rt.path)+`"`) {
			t.Errorf("route %s %s is not listed on the docs page", rt.method, rt.path)
		}
	}
}
