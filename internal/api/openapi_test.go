package api

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPIDocumentValidatesAndCoversEveryRoute(t *testing.T) {
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
