package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/avtomatika-ai/avtomatika-go/blob/local"
)

// Regression tests of what the schema-driven API fuzzer
// (compat/schemathesis) found.

// An expires_in so large that it overflows as a duration was taken for a
// valid one and failed in the blob store (503); an empty one was read as
// the default. Both are the client's mistake: 400.
func TestUploadExpiresInOutOfRangeRefused(t *testing.T) {
	st, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(o *Options) { o.Blobs, o.BlobHandler = st, st.Handler() })
	id := ts.createJob(vipToken, nil)
	for _, v := range []string{"282246079431815", "9223372036854775807", "604801", "0", "", "x", "60&expires_in=x", "60&expires_in=60"} {
		r := ts.do("GET", "/api/v1/jobs/"+id+"/files/upload?filename=a.txt&expires_in="+v, client(vipToken), nil)
		if r.status != http.StatusBadRequest {
			t.Fatalf("expires_in=%q: %d %s, want 400", v, r.status, r.body)
		}
		r.errorText(t)
	}
	if r := ts.do("GET", "/api/v1/jobs/"+id+"/files/upload?filename=a.txt&expires_in=604800", client(vipToken), nil); r.status != http.StatusOK {
		t.Fatalf("expires_in at the limit: %d %s", r.status, r.body)
	}
}

// An empty limit was read as the default page size, and of several limits
// the first was taken; both lists.
func TestListLimitEmptyOrRepeatedRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, path := range []string{"/api/v1/jobs", "/api/v1/jobs/quarantined", "/_public/jobs/quarantined"} {
		for _, q := range []string{"limit=", "limit=&limit=5", "limit=5&limit=x", "limit=5&limit=5", "limit=0", "limit=501"} {
			r := ts.do("GET", path+"?"+q, client(vipToken), nil)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s?%s: %d %s, want 400", path, q, r.status, r.body)
				continue
			}
			r.errorText(t)
		}
		if r := ts.do("GET", path+"?limit=5", client(vipToken), nil); r.status != http.StatusOK {
			t.Errorf("%s?limit=5: %d %s", path, r.status, r.body)
		}
	}
}

// A 405's Allow lists the methods the API document has for the path: not
// the hidden POST /api/v1/jobs/{endpoint} (which only explains a 404), and
// not PATCH /_worker/workers/{worker_id} for /_worker/workers/register,
// which the document describes as its own path.
func TestMethodNotAllowedListsDocumentedMethods(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, c := range []struct{ method, path, allow string }{
		{"OPTIONS", "/api/v1/jobs/0", "GET, HEAD"},
		{"DELETE", "/api/v1/jobs/0", "GET, HEAD"},
		{"OPTIONS", "/_worker/workers/register", "POST"},
		{"GET", "/_worker/workers/register", "POST"},
		{"OPTIONS", "/_worker/workers/w1", "PATCH"},
		{"PUT", "/api/v1/jobs/demo", "POST"},
		{"DELETE", "/_public/blobs/a/b", "GET, HEAD, PUT"},
		// A concrete documented path wins over the hidden template.
		{"POST", "/api/v1/jobs/quarantined", "GET, HEAD"},
	} {
		r := ts.do(c.method, c.path, client(vipToken), nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.allow)
			continue
		}
		r.errorText(t)
	}
	// Routes that exist answer as before; unknown paths stay 404, and a
	// POST to a job id still explains that no blueprint serves it (the
	// hidden template is as specific as GET /api/v1/jobs/{id}).
	if r := ts.do("POST", "/api/v1/jobs/nope", client(vipToken), nil); r.status != http.StatusNotFound || !strings.Contains(r.errorText(t), "no blueprint serves") {
		t.Errorf("POST to an endpoint no blueprint serves: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/no/such/path", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.status)
	}
}

// The document describes what the server answers: the guard's 400 and 429
// on every operation, the WebSocket route's 426 for a plain GET, a create
// without a body (read as {}), and null for initial_data and webhook_url.
func TestOpenAPIDescribesEveryAnswer(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do("GET", "/_public/openapi.json", nil, nil)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, code := range []int{400, 429} {
				if op.Responses.Status(code) == nil {
					t.Errorf("%s %s: %d is not documented", method, path, code)
				}
			}
		}
	}
	if ws := doc.Paths.Find("/_worker/ws/{worker_id}"); ws == nil || ws.Get.Responses.Status(426) == nil {
		t.Error("the WebSocket route's 426 is not documented")
	}
	create := doc.Paths.Find("/api/v1/jobs/demo").Post
	if create.RequestBody.Value.Required {
		t.Error("the create body is documented as required")
	}
	req := doc.Components.Schemas["CreateJobRequest"].Value
	for _, name := range []string{"initial_data", "webhook_url"} {
		if !req.Properties[name].Value.Nullable {
			t.Errorf("%s is not nullable", name)
		}
	}

	// And the server does what the document says.
	for _, body := range []any{nil, `{"initial_data": null, "webhook_url": null}`} {
		if r := ts.do("POST", "/api/v1/jobs/demo", client(vipToken), body); r.status != http.StatusAccepted {
			t.Errorf("create with body %v: %d %s", body, r.status, r.body)
		}
	}
	ws := ts.do("GET", "/_worker/ws/w1", map[string]string{"X-Worker-Token": globalToken}, nil)
	if ws.status != http.StatusUpgradeRequired {
		t.Errorf("plain GET of the WebSocket route: %d %s", ws.status, ws.body)
	}
	bad := ts.do("GET", "/api/v1/jobs/%09", client(vipToken), nil)
	if bad.status != http.StatusBadRequest {
		t.Errorf("control character in the path: %d", bad.status)
	}
}
