package api

import (
	"context"
	"html"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

func TestOpenAPIDocumentValidatesAndCoversEveryRoute(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	r := ts.do("GET", "/_public/openapi.json", nil, nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	routes := 0
	for _, rt := range ts.srv.routeTable() {
		if rt.hidden {
			continue
		}
		routes++
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("route %s %s is not documented", rt.method, rt.path)
		}
	}
	ops := 0
	for _, item := range doc.Paths.Map() {
		ops += len(item.Operations())
	}
	if ops != routes {
		t.Errorf("%d operations documented for %d routes", ops, routes)
	}
	create := doc.Paths.Find("/api/v1/jobs/demo")
	if create == nil || create.Post == nil || create.Post.Responses.Status(202) == nil || !strings.Contains(create.Post.Summary, "demo") {
		t.Fatal("the blueprint endpoint is not documented with its 202")
	}
	if doc.Components.Schemas["TaskResult"] == nil || doc.Components.Schemas["Job"].Value.Properties["state_history"] == nil {
		t.Fatal("wire schemas missing")
	}
}

// The docs page lists the tags in the document's order: what a client came
// for first, the operators' and the workers' parts last.
func TestOpenAPITagsInReadingOrder(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	r := ts.do("GET", "/_public/openapi.json", nil, nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tag := range doc.Tags {
		got = append(got, tag.Name)
		if tag.Description == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
	}
	want := []string{"jobs", "blueprints", "workers", "files", "admin", "public", "worker protocol (RXON)"}
	if !slices.Equal(got, want) {
		t.Errorf("tags = %q, want %q", got, want)
	}
	// Every operation's tag is declared, so none is listed out of order.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, tag := range op.Tags {
				if !slices.Contains(got, tag) {
					t.Errorf("%s %s: tag %q not in the document's tags", method, path, tag)
				}
			}
		}
	}
}

func TestDocumentTagsKeepsUnknownTags(t *testing.T) {
	t.Parallel()
	routes := []route{{tag: "public"}, {tag: "extra"}, {tag: "jobs"}, {tag: "hidden", hidden: true}, {tag: "jobs"}, {tag: "more"}}
	var got []string
	for _, tag := range documentTags(routes) {
		got = append(got, tag.Name)
	}
	if want := []string{"jobs", "public", "extra", "more"}; !slices.Equal(got, want) {
		t.Errorf("tags = %q, want %q", got, want)
	}
}

// The docs page shows its sections in the document's tag order.
func TestDocsPageSectionsInReadingOrder(t *testing.T) {
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
	var got []string
	for _, m := range regexp.MustCompile(`data-tag="([^"]+)"`).FindAllStringSubmatch(html.UnescapeString(string(out)), -1) {
		if !slices.Contains(got, m[1]) {
			got = append(got, m[1])
		}
	}
	if want := []string{"jobs", "blueprints", "workers", "files", "admin", "public", "worker protocol (RXON)"}; !slices.Equal(got, want) {
		t.Errorf("sections = %q, want %q", got, want)
	}
}
