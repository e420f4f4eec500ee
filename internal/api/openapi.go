package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// buildOpenAPI renders the OpenAPI 3 document of every route in the route
// table, including one job-creation operation per blueprint endpoint.
func (s *Server) buildOpenAPI() ([]byte, error) {
	version := s.opts.BuildVersion
	if version == "" {
		version = "dev"
	}
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:   "Avtomatika orchestrator",
			Version: version,
			Description: "Client API (header X-Client-Token) to create and follow jobs, and the RXON worker protocol " +
				"(headers X-Worker-Token and X-Worker-ID; mutating messages are HMAC-SHA256 signed) for workers. " +
				"Errors are JSON {\"error\": \"...\"}.",
		},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				authClient: {Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName(protocol.HeaderClientToken)},
				authWorker: {Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName(protocol.HeaderWorkerToken)},
				authAdmin:  {Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").WithName(protocol.HeaderAdminToken)},
			},
		},
	}
	if s.opts.PublicURL != "" {
		doc.Servers = openapi3.Servers{{URL: s.opts.PublicURL}}
	}
	gen := &schemaGen{schemas: doc.Components.Schemas}
	routes := s.routeTable()
	doc.Tags = documentTags(routes)
	for _, r := range routes {
		if r.hidden {
			continue
		}
		op := openapi3.NewOperation()
		op.Summary, op.Description, op.Tags = r.summary, r.description, []string{r.tag}
		op.OperationID = operationID(r.method, r.path)
		if r.auth != authNone {
			op.Security = &openapi3.SecurityRequirements{{r.auth: []string{}}}
		}
		for _, name := range pathParams(r.path) {
			op.AddParameter(openapi3.NewPathParameter(name).WithSchema(openapi3.NewStringSchema()))
		}
		for _, h := range r.headers {
			p := openapi3.NewHeaderParameter(h.name).WithDescription(h.description).WithRequired(h.required)
			p.Schema = &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{h.typ}}}
			op.AddParameter(p)
		}
		for _, q := range r.query {
			p := openapi3.NewQueryParameter(q.name).WithDescription(q.description).WithRequired(q.required)
			p.Schema = &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{q.typ}}}
			op.AddParameter(p)
		}
		if r.rawBody != "" {
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema().WithFormat("binary"), []string{r.rawBody}))}
		}
		if r.request != nil {
			ref, err := gen.ref(r.request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(!r.optionalBody).WithJSONSchemaRef(ref)}
		}
		op.Responses = openapi3.NewResponses()
		op.Responses.Delete("default")
		responses := withGuardReplies(r.responses)
		codes := make([]int, 0, len(responses))
		for code := range responses {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			rep := responses[code]
			resp := openapi3.NewResponse().WithDescription(rep.description)
			switch {
			case rep.body != nil:
				ref, err := gen.ref(rep.body)
				if err != nil {
					return nil, err
				}
				resp.WithJSONSchemaRef(ref)
			case rep.contentType != "":
				resp.WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{rep.contentType}))
			}
			op.AddResponse(code, resp)
		}
		doc.AddOperation(docPath(r.path), r.method, op)
	}
	if job := doc.Components.Schemas["Job"]; job != nil && job.Value != nil {
		if st := job.Value.Properties["status"]; st != nil && st.Value != nil {
			st.Value.Description = "Job status; finished, failed, cancelled, error and quarantined are terminal. " +
				"waiting_for_sub_job: a child blueprint's job (child_job_id) is running."
			for _, v := range jobStatuses {
				st.Value.Enum = append(st.Value.Enum, string(v))
			}
		}
	}
	// A JSON null reads as an absent field (encoding/json), and clients
	// send one for "none" (upstream's Python client: webhook_url=None).
	if req := doc.Components.Schemas["CreateJobRequest"]; req != nil && req.Value != nil {
		for _, name := range []string{"initial_data", "webhook_url"} {
			if p := req.Value.Properties[name]; p != nil && p.Value != nil {
				p.Value.Nullable = true
				p.Value.Description = "null is the same as leaving it out"
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// withGuardReplies adds to a route's replies those that the guard in
// front of every route gives (Server.guard): 400 for a path or query it
// refuses, and 429 for a connection over MAX_CONNECTIONS_PER_IP. A route
// that describes them itself keeps its description.
func withGuardReplies(rs map[int]reply) map[int]reply {
	out := map[int]reply{
		http.StatusBadRequest:      errReply("Control characters or invalid UTF-8 in the path or query, or a malformed query"),
		http.StatusTooManyRequests: errReply("Too many open connections from this address (MAX_CONNECTIONS_PER_IP); see Retry-After"),
	}
	for code, r := range rs {
		out[code] = r
	}
	return out
}

// tagOrder orders the document's tags, which the docs page follows, for a
// client's reading: the jobs a client came for first, then what it needs
// to create them, then the operators' and the workers' parts.
var tagOrder = []string{"jobs", "blueprints", "workers", "files", "admin", "public", "worker protocol (RXON)"}

// tagDescriptions head each tag's section of the docs page.
var tagDescriptions = map[string]string{
	"jobs":                   "Create jobs through blueprint endpoints, then follow, cancel, approve, retry and list them (X-Client-Token).",
	"blueprints":             "The blueprints, with the endpoints that create their jobs, and their state graphs.",
	"workers":                "The live workers: skills, prices, resources, reputation and load.",
	"files":                  "Files of a job in blob storage: presigned upload and download.",
	"admin":                  "For operators (X-Admin-Token): reload the configuration, read any job, the scheduler's schedules.",
	"public":                 "No client token: liveness, readiness, metrics, this document and the upstream approval webhook.",
	"worker protocol (RXON)": "For workers (X-Worker-Token, X-Worker-ID): register, heartbeat, take tasks, report results and events.",
}

// documentTags returns the tags of the documented routes in tagOrder; a
// tag that tagOrder lacks follows, in the order of the route table, so
// that no section goes missing.
func documentTags(routes []route) openapi3.Tags {
	rank := func(tag string) int {
		if i := slices.Index(tagOrder, tag); i >= 0 {
			return i
		}
		return len(tagOrder)
	}
	var names []string
	for _, r := range routes {
		if !r.hidden && r.tag != "" && !slices.Contains(names, r.tag) {
			names = append(names, r.tag)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return rank(a) - rank(b) })
	tags := make(openapi3.Tags, len(names))
	for i, name := range names {
		tags[i] = &openapi3.Tag{Name: name, Description: tagDescriptions[name]}
	}
	return tags
}

// jobStatuses are the job statuses of protocol/status.go, for the document.
var jobStatuses = []protocol.JobStatus{
	protocol.StatusPending, protocol.StatusRunning, protocol.StatusWaitingForWorker, protocol.StatusWaitingForHuman,
	protocol.StatusWaitingParallel, protocol.StatusWaitingForSubJob, protocol.StatusFinished, protocol.StatusFailed,
	protocol.StatusCancelled, protocol.StatusError, protocol.StatusQuarantined,
}

func statusList() string {
	names := make([]string, len(jobStatuses))
	for i, v := range jobStatuses {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// schemaGen turns Go wire types into component schemas.
type schemaGen struct{ schemas openapi3.Schemas }

func (g *schemaGen) ref(v any) (*openapi3.SchemaRef, error) {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Slice {
		item, err := g.ref(reflect.Zero(t.Elem()).Interface())
		if err != nil {
			return nil, err
		}
		arr := openapi3.NewArraySchema()
		arr.Items = item
		return &openapi3.SchemaRef{Value: arr}, nil
	}
	name := t.Name()
	if _, ok := g.schemas[name]; !ok {
		ref, err := openapi3gen.NewSchemaRefForValue(v, nil)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", name, err)
		}
		g.schemas[name] = ref
	}
	return openapi3.NewSchemaRef("#/components/schemas/"+name, nil), nil
}

func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

// docPath is a mux pattern as an OpenAPI path: {rest...} becomes {rest}.
func docPath(path string) string { return strings.ReplaceAll(path, "...}", "}") }

func operationID(method, path string) string {
	r := strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_")
	return strings.ToLower(method) + strings.TrimRight(r.Replace(path), "_")
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.openapi)))
	_, _ = w.Write(s.openapi)
}
