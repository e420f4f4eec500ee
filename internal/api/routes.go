package api

import (
	"net/http"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// auth kinds of a route, for the API document.
const (
	authNone   = ""
	authClient = "ClientToken"
	authWorker = "WorkerToken"
	authAdmin  = "AdminToken"
)

// route is one HTTP route: the mux registers it and the OpenAPI document
// describes it, so the document covers every route there is.
type route struct {
	method, path string
	handler      http.Handler
	hidden       bool // left out of the API document (static assets)

	summary, description string
	tag                  string
	auth                 string
	request              any           // example value of the JSON body type, or nil
	optionalBody         bool          // the JSON body may be left out (an empty body reads as {})
	rawBody              string        // content type of a non-JSON request body
	query                []param       // query parameters
	headers              []param       // request header parameters
	responses            map[int]reply // status → reply
}

type param struct {
	name, typ, description string
	required               bool
}

type reply struct {
	description string
	body        any    // example value of the JSON body type, or nil
	contentType string // non-JSON bodies
}

var (
	errReply = func(d string) reply { return reply{description: d, body: protocol.ErrorBody{}} }
	replies  = struct{ badRequest, unauthorized, notFound, forbidden, tooLarge, tooMany, conflict, unavailable, unknownWorker, timeout reply }{
		errReply("Malformed JSON, wrong types or invalid values, a body that is not UTF-8, control characters or invalid UTF-8 in the path or query"),
		errReply("Missing or unknown token"),
		errReply("Not found (also for another client's job)"),
		errReply("Authentication, signature or timestamp check failed"),
		errReply("Request body over the configured limit"),
		errReply("Rate limit or monthly quota exceeded; see Retry-After"),
		errReply("Conflict with the job's state, or a replayed message"),
		errReply("The store is unreachable"),
		errReply("Unknown or expired worker: \"" + unknownWorker + "\""),
		errReply("The body did not arrive within REQUEST_BODY_TIMEOUT; the connection is closed"),
	}
)

type statusBody struct {
	Status string `json:"status"`
}

type approvalReply struct {
	Status string `json:"status"`
	JobID  string `json:"job_id"`
}

type reloadReply struct {
	Status  string `json:"status"`
	Clients int    `json:"clients"`
	Workers int    `json:"workers"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) routeTable() []route {
	var rs []route
	add := func(r route) { rs = append(rs, r) }
	for _, v := range s.versions() {
		p := protocol.ClientPrefix + "/" + v
		add(route{method: "GET", path: p + "/jobs", handler: s.client(s.listJobs), tag: "jobs", auth: authClient,
			summary: "List your jobs, newest first",
			description: "From the history database when it is enabled (jobs the live store has expired included), else from the live store. " +
				"Paged by cursor: the answer is {\"jobs\": [...], \"next_cursor\": \"...\"}; pass next_cursor as cursor for the next page " +
				"(empty on the last page). Upstream's bare list and offset paging are not supported (offset: 400).",
			query: []param{{"limit", "integer", "Page size, 1 to 500 (50)", false}, {"cursor", "string", "next_cursor of the previous page", false},
				{"status", "string", "Only jobs with this status: " + statusList(), false}, {"blueprint", "string", "Only jobs of this blueprint", false},
				{"from", "string", "Only jobs created at or after this RFC 3339 time (history only)", false},
				{"to", "string", "Only jobs created before this RFC 3339 time (history only)", false}},
			responses: map[int]reply{200: {description: "A page of jobs", body: protocol.JobList{}}, 400: replies.badRequest, 401: replies.unauthorized, 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/jobs/{id}", handler: s.client(s.getJob), tag: "jobs", auth: authClient,
			summary: "Get a job", description: "status, current_state, progress, progress_message, state_history, error_message, and result once the job has ended.",
			query:     []param{{"fields", "string", "Comma-separated keys to return (id is always included)", false}},
			responses: map[int]reply{200: {description: "The job", body: protocol.Job{}}, 401: replies.unauthorized, 404: replies.notFound, 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/jobs/{id}/history", handler: s.client(s.jobHistory), tag: "jobs", auth: authClient,
			summary: "A job's audit trail", description: "Every event, oldest first: created, states entered, dispatch decisions, results, retries, timeouts, approvals, cancellation, webhook attempts, the end.",
			responses: map[int]reply{200: {description: "Events", body: []history.Event{}}, 401: replies.unauthorized, 404: replies.notFound, 501: errReply("History is disabled"), 503: errReply("The history database is unavailable (Retry-After)")}})
		add(route{method: "POST", path: p + "/jobs/{id}/cancel", handler: s.client(s.cancelJob), tag: "jobs", auth: authClient,
			summary: "Cancel a job", description: "Cancels the job, its outstanding tasks (workers running them are told) and its child job.",
			responses: map[int]reply{200: {description: "Cancelled", body: statusBody{}}, 401: replies.unauthorized, 404: errReply("Job not found or already terminal."), 429: replies.tooMany}})
		add(route{method: "POST", path: p + "/jobs/{id}/retry", handler: s.client(s.retryJob), tag: "jobs", auth: authClient,
			summary: "Retry a failed or quarantined job",
			description: "Runs the job again from the state it failed in: the state whose handler or task failed, or, when a failure route took the job " +
				"to a failure end state, the state whose task failed. The job becomes running there with a fresh count of attempts and no error, " +
				"its state's handler runs as on any entry, and it ends (and notifies its webhook_url) again. The audit trail records job_retried " +
				"(who asked, from which state). Refused (409, saying why) for a job that is not failed or quarantined, whose blueprint or state no longer " +
				"exists, that ended in an end state its blueprint chose without a failed task, or that is a child job (retry its parent). " +
				"A job whose live record expired (the store's retention) is 404.",
			responses: map[int]reply{200: {description: "The job runs again from state", body: protocol.RetryResponse{}}, 401: replies.unauthorized,
				404: replies.notFound, 409: errReply("The job cannot be retried; the message says why"), 429: replies.tooMany, 503: replies.unavailable}})
		add(route{method: "POST", path: p + "/jobs/{id}/approve", handler: s.client(s.approveJob), tag: "jobs", auth: authClient,
			summary: "Decide for a job waiting for a human", request: protocol.ApprovalRequest{},
			responses: map[int]reply{200: {description: "Decision applied", body: approvalReply{}}, 400: replies.badRequest, 401: replies.unauthorized,
				404: replies.notFound, 408: replies.timeout, 409: errReply("The job is not waiting for a decision"), 413: replies.tooLarge, 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/jobs/{id}/files/upload", handler: s.client(s.uploadURL), tag: "files", auth: authClient,
			summary: "A presigned URL to upload a job file",
			description: "The URL accepts a plain HTTP PUT of the file's bytes (no token); the file is stored as jobs/<job_id>/<filename> " +
				"in blob storage and s3_uri refers to it in task params. Owner only. With local blob storage (BLOB_DIR) the URL is single-use: " +
				"the first PUT that passes the signature check spends it, even if the upload then fails, and a repeat gets 403. " +
				"With S3 it is an S3 presigned URL, which S3 cannot make single-use: anyone holding it can PUT (and replace the file) any number of times " +
				"until it expires, so keep expires_in short and the URL private.",
			query: []param{{"filename", "string", "File name: no '/', '\\', control characters, '.' or '..'", true},
				{"expires_in", "integer", "Seconds the URL stays valid, 1 to 604800 (3600)", false}},
			responses: map[int]reply{200: {description: "Upload URL", body: protocol.UploadURL{}}, 400: replies.badRequest, 401: replies.unauthorized,
				404: replies.notFound, 429: replies.tooMany, 501: errReply("Blob storage is not enabled"), 503: errReply("Blob storage is unreachable")}})
		add(route{method: "PUT", path: p + "/jobs/{id}/files/content/{filename}", handler: s.client(s.uploadContent), tag: "files", auth: authClient,
			summary: "Upload a job file (streamed)", rawBody: "application/octet-stream",
			description: "The body is streamed to blob storage as jobs/<job_id>/<filename>, replacing a file of that name; the file appears only once complete. " +
				"Limited to MAX_UPLOAD_BYTES. Owner only.",
			responses: map[int]reply{200: {description: "Stored", body: protocol.FileUploaded{}}, 400: replies.badRequest, 401: replies.unauthorized,
				404: replies.notFound, 408: errReply("The upload paused for longer than REQUEST_BODY_TIMEOUT; nothing was stored"),
				413: errReply("Over MAX_UPLOAD_BYTES; nothing was stored"), 429: replies.tooMany,
				501: errReply("Blob storage is not enabled"), 503: errReply("Blob storage is unreachable")}})
		add(route{method: "GET", path: p + "/jobs/{id}/files/download/{filename}", handler: s.client(s.download), tag: "files", auth: authClient,
			summary: "Download a job file", description: "Redirects (302) to a presigned GET URL valid for 60 seconds. Owner only.",
			responses: map[int]reply{302: {description: "Location: the presigned URL"}, 400: replies.badRequest, 401: replies.unauthorized,
				404: errReply("No such job, or no such file"), 429: replies.tooMany, 501: errReply("Blob storage is not enabled"), 503: errReply("Blob storage is unreachable")}})
		add(route{method: "GET", path: p + "/workers", handler: s.client(s.listWorkers), tag: "workers", auth: authClient,
			summary: "List live workers",
			description: "What dispatch decides on: id, type, status, skills, prices, reputation, load and capacity, installed artifacts (name, version, type) " +
				"and a hardware summary (devices' type, model and numeric properties; the numbers, booleans and model names of resources.properties). " +
				"No hostname, installed software, device ids, usage or current task ids: those only with X-Admin-Token (ADMIN_TOKEN) besides the client token. " +
				"No tokens ever.",
			responses: map[int]reply{200: {description: "Workers", body: []protocol.WorkerInfo{}}, 401: replies.unauthorized,
				403: errReply("X-Admin-Token sent but wrong (or the admin API is disabled)"), 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/workers/catalog", handler: s.client(s.workerCatalog), tag: "workers", auth: authClient,
			summary: "The skills live workers offer (upstream's catalog)",
			description: "An object keyed by skill name: contract (the skill as the first worker offering it, by id, registered it, with base_price from " +
				"that worker's cost_per_skill), providers_count, worker_types and average_reputation (4 decimals) of the workers offering it.",
			responses: map[int]reply{200: {description: "Skills", body: protocol.WorkerCatalog{}}, 401: replies.unauthorized, 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/dashboard", handler: s.client(s.dashboard), tag: "jobs", auth: authClient,
			summary: "A summary: your jobs by status, workers, queues (upstream's dashboard)",
			description: "workers.total and by_status; jobs: your jobs in the live store (unfinished, and ended within the store's retention) counted by status, " +
				"at most the newest 10,000 (jobs_truncated: true past that), and jobs.queued, the tasks of every client waiting in queues; queues.pending " +
				"by task type (no worker chosen yet) and queues.assigned (queued for a chosen worker).",
			responses: map[int]reply{200: {description: "The summary", body: protocol.Dashboard{}}, 401: replies.unauthorized, 429: replies.tooMany, 503: replies.unavailable}})
		add(route{method: "GET", path: p + "/jobs/quarantined", handler: s.client(s.quarantinedJobs), tag: "jobs", auth: authClient,
			summary: "Your quarantined jobs, newest first (upstream's list)",
			description: "A bare list, as upstream answers it, of your jobs with status quarantined (also GET " + protocol.PublicQuarantined + "). " +
				"Only your own jobs: upstream's public route shows every client's.",
			query:     []param{{"limit", "integer", "At most this many, 1 to 500 (100)", false}},
			responses: map[int]reply{200: {description: "Jobs", body: []protocol.Job{}}, 400: replies.badRequest, 401: replies.unauthorized, 429: replies.tooMany, 503: errReply("The history database is unavailable")}})
		add(route{method: "GET", path: p + "/blueprints", handler: s.client(s.listBlueprints), tag: "blueprints", auth: authClient,
			summary:   "List blueprints",
			responses: map[int]reply{200: {description: "Blueprints", body: []protocol.BlueprintInfo{}}, 401: replies.unauthorized, 429: replies.tooMany}})
		add(route{method: "GET", path: p + "/blueprints/{name}/graph", handler: s.client(s.blueprintGraph), tag: "blueprints", auth: authClient,
			summary: "A blueprint's state graph", query: []param{{"format", "string", "dot (default) or mermaid", false}},
			responses: map[int]reply{200: {description: "The graph", contentType: "text/vnd.graphviz"}, 400: replies.badRequest, 401: replies.unauthorized, 404: replies.notFound, 429: replies.tooMany}})
		add(route{method: "POST", path: p + "/admin/reload", handler: http.HandlerFunc(s.adminReload), tag: "admin", auth: authAdmin,
			summary: "Reload clients.toml and workers.toml", description: "Needs X-Admin-Token (ADMIN_TOKEN). An invalid file leaves the running configuration unchanged.",
			responses: map[int]reply{200: {description: "Reloaded", body: reloadReply{}}, 400: errReply("A configuration file is invalid"), 403: replies.forbidden}})
		add(route{method: "POST", path: p + "/admin/reload-workers", handler: http.HandlerFunc(s.reloadWorkers), tag: "admin", auth: authAdmin,
			summary: "Reload workers.toml (upstream's route)", description: "Needs X-Admin-Token (ADMIN_TOKEN; upstream lets any client reload). " +
				"Re-reads the worker tokens only; an invalid file leaves them unchanged.",
			responses: map[int]reply{200: {description: "Reloaded", body: workersReloaded{}}, 400: errReply("workers.toml is invalid"), 403: replies.forbidden,
				501: errReply("Reloading is not configured")}})
		add(route{method: "GET", path: p + "/admin/jobs/{id}", handler: http.HandlerFunc(s.adminJob), tag: "admin", auth: authAdmin,
			summary: "Get any job (operators)", description: "Needs X-Admin-Token. Reads jobs of every client, including those the scheduler starts.",
			responses: map[int]reply{200: {description: "The job", body: protocol.Job{}}, 403: replies.forbidden, 404: replies.notFound}})
		add(route{method: "GET", path: p + "/admin/schedules", handler: http.HandlerFunc(s.adminSchedules), tag: "admin", auth: authAdmin,
			summary: "The scheduler's schedules, next and last runs", description: "Needs X-Admin-Token. Jobs the scheduler starts belong to the internal client \"scheduler\".",
			responses: map[int]reply{200: {description: "Schedules", body: []protocol.ScheduleInfo{}}, 403: replies.forbidden}})
	}
	for _, v := range s.versions() {
		add(route{method: "POST", path: protocol.ClientPrefix + "/" + v + "/jobs/{endpoint}", hidden: true,
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeError(w, http.StatusNotFound, "no blueprint serves POST %s (GET /api/v1/blueprints lists the endpoints)", r.URL.Path)
			})})
	}
	for _, bp := range s.eng.Blueprints() {
		v, path := bp.API()
		if path == "" {
			continue
		}
		add(route{method: "POST", path: protocol.ClientPrefix + "/" + v + path, handler: s.client(s.createJob(bp.Name())), tag: "jobs", auth: authClient,
			summary: "Create a " + bp.Name() + " job",
			description: "Starts blueprint " + bp.Name() + " in state " + bp.StartState() + ". Counts against the client's monthly quota. " +
				"The body is {\"initial_data\": {...}, \"webhook_url\": \"...\"}, or the input object alone: a body naming none of upstream's create fields (" +
				upstreamCreateFields + ") is the input. In the wrapper, any other top-level field is refused (400 naming it); " +
				"policy goes with every task (RXON 1.0b17); its allowed_skills, a non-empty list of task types, fails the job when it dispatches another type. " +
				"dispatch_timeout, result_timeout, security, metadata and max_transitions are accepted for upstream compatibility and not used. " +
				"webhook_url, when given, must be http(s) and receives a POST when the job ends. " +
				"It may not carry user info (user:password@: 400; sign deliveries with WEBHOOK_SECRET instead); the values of query parameters named like a secret " +
				"(token, secret, password, signature, key, ...) are delivered to but shown as \"redacted\" in job views and history.",
			request: protocol.CreateJobRequest{}, optionalBody: true,
			headers: []param{{protocol.HeaderIdempotencyKey, "string", "Up to 255 characters. A repeat with the same key within 24 h answers with the first job " +
				"(and the header " + protocol.HeaderIdempotentReplayed + ": true), creates nothing and is not charged; keys are per client.", false}},
			responses: map[int]reply{202: {description: "Accepted", body: protocol.CreateJobResponse{}}, 400: replies.badRequest, 401: replies.unauthorized,
				408: replies.timeout, 413: replies.tooLarge, 429: replies.tooMany, 503: replies.unavailable}})
	}
	add(route{method: "GET", path: protocol.PublicStatus, handler: http.HandlerFunc(s.status), tag: "public", summary: "Liveness",
		responses: map[int]reply{200: {description: "The server is up", body: statusBody{}}}})
	add(route{method: "GET", path: protocol.PublicReady, handler: http.HandlerFunc(s.ready), tag: "public", summary: "Readiness: the store answers",
		responses: map[int]reply{200: {description: "Ready", body: statusBody{}}, 503: replies.unavailable}})
	add(route{method: "GET", path: protocol.PublicMetrics, handler: s.metricsHandler(), tag: "public", summary: "Prometheus metrics",
		description: "Text exposition format: jobs, tasks, queues, workers, reputation, webhooks, scheduler, HTTP and store latency. " +
			"No token is needed, so worker ids appear only with METRICS_WORKER_LABELS=true (then for at most METRICS_WORKER_LABELS_MAX workers); " +
			"otherwise the reputation and load gauges have the one series worker=\"(other)\".",
		responses: map[int]reply{200: {description: "Metrics", contentType: "text/plain"}}})
	add(route{method: "GET", path: protocol.PublicOpenAPI, handler: http.HandlerFunc(s.serveOpenAPI), tag: "public", summary: "This OpenAPI document",
		responses: map[int]reply{200: {description: "OpenAPI 3 document", contentType: "application/json"}}})
	add(route{method: "GET", path: protocol.PublicDocs, handler: http.HandlerFunc(s.serveDocs), tag: "public", summary: "Interactive API reference",
		responses: map[int]reply{200: {description: "HTML page", contentType: "text/html"}}})
	add(route{method: "GET", path: protocol.PublicDocs + "/{asset}", handler: http.HandlerFunc(s.serveDocsAsset), hidden: true})
	for _, m := range []string{"GET", "PUT"} {
		add(route{method: m, path: protocol.PublicBlobsPrefix + "/{object...}", handler: http.HandlerFunc(s.presigned), tag: "files",
			summary: m + " through a presigned URL (local blob storage)", rawBody: map[string]string{"PUT": "application/octet-stream"}[m],
			description: "Without S3, the orchestrator stores files in a local folder and serves their presigned URLs here: the query carries an " +
				"expiry and an HMAC signature, no token is needed. A PUT URL is single-use (the first PUT that passes the signature check spends it); " +
				"GET URLs work until they expire. With S3 the URLs point at the S3 server instead, and S3 cannot make a PUT URL single-use.",
			responses: map[int]reply{200: {description: map[string]string{"GET": "The file", "PUT": "Stored"}[m], contentType: "application/octet-stream"},
				403: errReply("Bad or expired signature, or an upload URL already used (PUT URLs are single-use)"), 404: errReply("No such object"),
				413: errReply("Over MAX_UPLOAD_BYTES"), 503: errReply("The use of the upload URL could not be recorded (the store is unreachable)")}})
	}
	add(route{method: "POST", path: protocol.PublicApprovalPattern, handler: http.HandlerFunc(s.publicApproval), tag: "public", auth: authClient,
		summary: "Approval webhook (upstream-compatible)",
		description: "Same as POST /api/v1/jobs/{id}/approve with the owner's X-Client-Token, or without it with the pending approval's single-use token " +
			"(query parameter token, or token in the body): the job's approval.url, shown in the owner's GET of the job, valid until approval.expires_at " +
			"(APPROVAL_TOKEN_TTL_SECONDS, 7 days). A wrong, used or expired token is 403, whether or not the job exists.",
		query:   []param{{"token", "string", "The pending approval's single-use token (approval.url carries it)", false}},
		request: protocol.ApprovalRequest{},
		responses: map[int]reply{200: {description: "Decision applied", body: approvalReply{}}, 400: replies.badRequest, 401: replies.unauthorized,
			403: errReply("Invalid, used or expired approval token"), 404: replies.notFound, 409: errReply("The job is not waiting for a decision")}})

	add(route{method: "GET", path: protocol.PublicQuarantined, handler: s.client(s.quarantinedJobs), tag: "public", auth: authClient,
		summary: "Your quarantined jobs (upstream's public route)", description: "Same as GET /api/v1/jobs/quarantined: needs X-Client-Token and lists only your jobs " +
			"(upstream's is unauthenticated and lists every client's).",
		query:     []param{{"limit", "integer", "At most this many, 1 to 500 (100)", false}},
		responses: map[int]reply{200: {description: "Jobs", body: []protocol.Job{}}, 400: replies.badRequest, 401: replies.unauthorized, 429: replies.tooMany}})

	workerErrs := map[int]reply{400: replies.badRequest, 403: replies.forbidden, 408: replies.timeout, 409: errReply("Replayed message"), 413: replies.tooLarge, 503: replies.unavailable}
	with := func(m map[int]reply, ok int, r reply) map[int]reply {
		out := map[int]reply{ok: r}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	const rxon = "worker protocol (RXON)"
	add(route{method: "POST", path: protocol.PathRegister, handler: http.HandlerFunc(s.register), tag: rxon, auth: authWorker,
		summary: "Register a worker", description: "Signed message (HMAC-SHA256 of the canonical JSON with the worker's master token). Reputation survives re-registration.",
		request: protocol.Registration{}, responses: with(workerErrs, 200, reply{description: "Registered", body: protocol.RegisterResponse{}})})
	add(route{method: "PATCH", path: protocol.PathWorkerPattern, handler: http.HandlerFunc(s.heartbeat), tag: rxon, auth: authWorker,
		summary: "Heartbeat", description: "A signed Heartbeat updates status and skills; an empty body only refreshes the TTL. An unknown or expired worker gets 404 and must register again.",
		request: protocol.Heartbeat{}, responses: with(with(workerErrs, 404, replies.unknownWorker), 200, reply{description: "OK; may list tasks to cancel", body: protocol.HeartbeatResponse{}})})
	add(route{method: "GET", path: protocol.PathNextPattern, handler: http.HandlerFunc(s.nextTask), tag: rxon, auth: authWorker,
		summary: "Long-poll for the next task", description: "Answers at once when a task is queued, else waits up to the poll timeout and answers 204.",
		query:     []param{{"timeout", "number", "Seconds to wait (capped by the server)", false}, {"available_skills", "string", "Comma list (informational)", false}, {"hot_skills", "string", "Comma list (informational)", false}},
		responses: map[int]reply{200: {description: "A task", body: protocol.TaskPayload{}}, 204: {description: "No task within the wait"}, 403: replies.forbidden, 404: replies.unknownWorker}})
	add(route{method: "POST", path: protocol.PathResult, handler: http.HandlerFunc(s.result), tag: rxon, auth: authWorker,
		summary: "Report a task result", description: "Applied exactly once; late, duplicate or foreign results are answered with status ignored and a reason. With next=true the answer also carries the worker's next task as next_task when one waits, picked up as a poll would pick it up (an extension: a worker that sends it saves a poll per task under load).",
		query:   []param{{protocol.QueryNext, "boolean", "Also pick up the worker's next task, if one waits, into next_task", false}},
		request: protocol.TaskResult{}, responses: with(workerErrs, 200, reply{description: "Accepted or ignored", body: protocol.ResultResponse{}})})
	add(route{method: "POST", path: protocol.PathEvents, handler: http.HandlerFunc(s.events), tag: rxon, auth: authWorker,
		summary: "Send an event (progress and others)", description: "Signed without bubbling_chain. Progress payload: {\"progress\": 0..1, \"message\": \"...\"}.",
		request: protocol.WorkerEvent{}, responses: with(workerErrs, 200, reply{description: "Accepted", body: statusBody{}})})
	add(route{method: "GET", path: protocol.PathWSPattern, handler: http.HandlerFunc(s.websocket), tag: rxon, auth: authWorker,
		summary: "WebSocket command channel", description: "Upgrade. The server sends commands such as {\"command\":\"cancel_task\",\"task_id\":...}; the worker may send signed events.",
		responses: map[int]reply{101: {description: "Switching protocols"}, 403: replies.forbidden,
			426: {description: "Not a WebSocket upgrade request", contentType: "text/plain"}}})
	add(route{method: "POST", path: protocol.PathToken, handler: http.HandlerFunc(s.issueToken), tag: rxon, auth: authWorker,
		summary: "Issue a short-lived worker token", responses: map[int]reply{200: {description: "Tokens", body: protocol.TokenResponse{}}, 403: replies.forbidden}})
	add(route{method: "POST", path: protocol.PathTokenRefresh, handler: http.HandlerFunc(s.refreshToken), tag: rxon,
		summary: "Refresh a short-lived worker token", description: "Identity from X-Worker-ID; the access token may have expired.",
		request: refreshRequest{}, responses: map[int]reply{200: {description: "New tokens", body: protocol.TokenResponse{}}, 400: replies.badRequest, 403: replies.forbidden}})
	return rs
}

func (s *Server) metricsHandler() http.Handler {
	if s.opts.Metrics != nil {
		return s.opts.Metrics
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
	})
}

func (s *Server) routes() {
	for _, r := range s.routeTable() {
		s.mux.Handle(r.method+" "+r.path, r.handler)
	}
}
