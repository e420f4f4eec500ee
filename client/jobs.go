package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// CreateOption configures CreateJob.
type CreateOption func(*createConfig)

type createConfig struct {
	webhookURL     string
	idempotencyKey string
}

// WithIdempotencyKey makes the creation happen once per key (for 24 h): a
// retry with the same key after a timeout or a 503 gets the job the first
// call created, if it did, instead of a second job, and is not charged
// against the quota again. Use a fresh random key per intended job.
func WithIdempotencyKey(key string) CreateOption {
	return func(c *createConfig) { c.idempotencyKey = key }
}

// WithWebhook asks the orchestrator to POST job notifications to url.
func WithWebhook(url string) CreateOption {
	return func(c *createConfig) { c.webhookURL = url }
}

// CreateJob starts a job through a blueprint's endpoint and returns its id.
// The endpoint is the path the blueprint declares, relative to
// /api/{version}: "/jobs/full_showcase" posts to
// /api/v1/jobs/full_showcase. A nil initialData sends none (the server
// uses {}).
//
// CreateJob is not retried: a failed call may or may not have created a job,
// unless WithIdempotencyKey is given, which makes a retry of the same call
// safe.
func (c *Client) CreateJob(ctx context.Context, endpoint string, initialData map[string]any, opts ...CreateOption) (string, error) {
	op := "create job at " + strconv.Quote(endpoint)
	path, err := endpointPath(endpoint)
	if err != nil {
		return "", wrap(op, err)
	}
	var cfg createConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	body := protocol.CreateJobRequest{InitialData: initialData, WebhookURL: cfg.webhookURL}
	var out protocol.CreateJobResponse
	req := request{method: http.MethodPost, path: c.apiPath(path), body: body}
	if cfg.idempotencyKey != "" {
		req.header = http.Header{protocol.HeaderIdempotencyKey: {cfg.idempotencyKey}}
	}
	if err := c.call(ctx, req, &out); err != nil {
		return "", wrap(op, err)
	}
	if out.JobID == "" {
		return "", wrap(op, errors.New("response has no job_id"))
	}
	return out.JobID, nil
}

// endpointPath cleans and escapes a blueprint endpoint: a leading "/" is
// added when missing; empty, "." and ".." segments are refused.
func endpointPath(endpoint string) (string, error) {
	trimmed := strings.TrimPrefix(endpoint, "/")
	if trimmed == "" {
		return "", fmt.Errorf("%w: empty endpoint", ErrInvalid)
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(trimmed, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: endpoint %q has an empty, \".\" or \"..\" segment", ErrInvalid, endpoint)
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String(), nil
}

// JobOption configures Job.
type JobOption func(*jobConfig)

type jobConfig struct {
	fields []string
}

// Fields asks for only these job fields (the server adds "id"), e.g.
// Fields("status", "progress"). Fields left out are zero in the result.
func Fields(fields ...string) JobOption {
	return func(c *jobConfig) { c.fields = append(c.fields, fields...) }
}

// Job returns the current state of a job. A job that does not exist, or
// belongs to another client, is ErrNotFound.
func (c *Client) Job(ctx context.Context, id string, opts ...JobOption) (*protocol.Job, error) {
	op := "get job " + strconv.Quote(id)
	var cfg jobConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	seg, err := segment("job id", id)
	if err != nil {
		return nil, wrap(op, err)
	}
	var q url.Values
	if len(cfg.fields) > 0 {
		q = url.Values{"fields": {strings.Join(cfg.fields, ",")}}
	}
	job, err := c.getJob(ctx, seg, q)
	if err != nil {
		return nil, wrap(op, err)
	}
	return job, nil
}

// getJob reads a job by its escaped id; errors are not wrapped.
func (c *Client) getJob(ctx context.Context, seg string, q url.Values) (*protocol.Job, error) {
	var job protocol.Job
	if err := c.call(ctx, request{method: http.MethodGet, path: c.apiPath("/jobs/" + seg), query: q}, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Cancel asks the orchestrator to cancel a job. A job that is unknown or
// already terminal is ErrNotFound.
func (c *Client) Cancel(ctx context.Context, id string) error {
	op := "cancel job " + strconv.Quote(id)
	seg, err := segment("job id", id)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, c.call(ctx, request{method: http.MethodPost, path: c.apiPath("/jobs/" + seg + "/cancel")}, nil))
}

// Approve sends a human decision (for example "approved") to a job that
// waits for one. A job that is not waiting is ErrConflict; a decision the
// job does not offer is ErrInvalid.
func (c *Client) Approve(ctx context.Context, id, decision string) error {
	op := "approve job " + strconv.Quote(id)
	seg, err := segment("job id", id)
	if err != nil {
		return wrap(op, err)
	}
	if decision == "" {
		return wrap(op, fmt.Errorf("%w: empty decision", ErrInvalid))
	}
	body := protocol.ApprovalRequest{Decision: decision}
	return wrap(op, c.call(ctx, request{method: http.MethodPost, path: c.apiPath("/jobs/" + seg + "/approve"), body: body}, nil))
}

// Retry runs a failed or quarantined job again from the state it failed in
// and returns that state. A job that cannot be retried (it has not failed,
// its blueprint changed, it is a child job) is ErrConflict, with the
// server's reason; a job that is unknown or expired is ErrNotFound.
func (c *Client) Retry(ctx context.Context, id string) (string, error) {
	op := "retry job " + strconv.Quote(id)
	seg, err := segment("job id", id)
	if err != nil {
		return "", wrap(op, err)
	}
	var resp protocol.RetryResponse
	if err := c.call(ctx, request{method: http.MethodPost, path: c.apiPath("/jobs/" + seg + "/retry")}, &resp); err != nil {
		return "", wrap(op, err)
	}
	return resp.State, nil
}

// ListOptions filters and pages Jobs. Zero values are left to the server.
type ListOptions struct {
	Limit     int                // page size; 0 = server default
	Cursor    string             // NextCursor of the previous page; "" = first page
	Status    protocol.JobStatus // only jobs with this status
	Blueprint string             // only jobs of this blueprint
	// From and To select jobs created at or after From and before To; a
	// zero time is no bound. The server needs its history database for
	// them (400 otherwise).
	From, To time.Time
}

// Jobs returns one page of this client's jobs. Pass the page's NextCursor
// as Cursor to get the next one; an empty NextCursor marks the last page.
// AllJobs walks every page.
func (c *Client) Jobs(ctx context.Context, opts ListOptions) (*protocol.JobList, error) {
	const op = "list jobs"
	if opts.Limit < 0 {
		return nil, wrap(op, fmt.Errorf("%w: negative limit %d", ErrInvalid, opts.Limit))
	}
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	if opts.Blueprint != "" {
		q.Set("blueprint", opts.Blueprint)
	}
	if !opts.From.IsZero() {
		q.Set("from", opts.From.UTC().Format(time.RFC3339Nano))
	}
	if !opts.To.IsZero() {
		q.Set("to", opts.To.UTC().Format(time.RFC3339Nano))
	}
	var page protocol.JobList
	if err := c.call(ctx, request{method: http.MethodGet, path: c.apiPath("/jobs"), query: q}, &page); err != nil {
		return nil, wrap(op, err)
	}
	return &page, nil
}

// AllJobs iterates over this client's jobs page by page, starting at
// opts.Cursor. It stops at the first error, which it yields with a zero Job.
//
//	for job, err := range c.AllJobs(ctx, client.ListOptions{Status: "running"}) {
//		if err != nil { return err }
//		fmt.Println(job.ID)
//	}
func (c *Client) AllJobs(ctx context.Context, opts ListOptions) iter.Seq2[protocol.Job, error] {
	return func(yield func(protocol.Job, error) bool) {
		seen := map[string]bool{}
		for {
			page, err := c.Jobs(ctx, opts)
			if err != nil {
				yield(protocol.Job{}, err)
				return
			}
			for _, j := range page.Jobs {
				if !yield(j, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			if seen[page.NextCursor] {
				yield(protocol.Job{}, wrap("list jobs", fmt.Errorf("server repeated cursor %q", page.NextCursor)))
				return
			}
			seen[page.NextCursor] = true
			opts.Cursor = page.NextCursor
		}
	}
}

// HistoryEvent is one entry of a job's history. The well-known members are
// decoded into fields; Fields holds the whole event as sent, including any
// member this version of the client does not know.
type HistoryEvent struct {
	EventType string    // e.g. "job_created", "state_finished", "task_dispatched"
	Timestamp time.Time // zero when absent or not understood
	State     string
	Fields    map[string]any
}

// UnmarshalJSON decodes an event leniently: the timestamp may be an
// RFC 3339 string or Unix epoch seconds.
func (e *HistoryEvent) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*e = HistoryEvent{Fields: m}
	e.EventType, _ = m["event_type"].(string)
	e.State, _ = m["state"].(string)
	switch ts := m["timestamp"].(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			e.Timestamp = t
		}
	case float64:
		sec := int64(ts)
		e.Timestamp = time.Unix(sec, int64((ts-float64(sec))*1e9)).UTC()
	}
	return nil
}

// MarshalJSON writes Fields back, so an event survives a round trip.
func (e HistoryEvent) MarshalJSON() ([]byte, error) {
	if e.Fields != nil {
		return json.Marshal(e.Fields)
	}
	m := map[string]any{"event_type": e.EventType}
	if e.State != "" {
		m["state"] = e.State
	}
	if !e.Timestamp.IsZero() {
		m["timestamp"] = e.Timestamp.Format(time.RFC3339Nano)
	}
	return json.Marshal(m)
}

// History returns a job's events in the order the server keeps them
// (oldest first).
func (c *Client) History(ctx context.Context, id string) ([]HistoryEvent, error) {
	op := "job history " + strconv.Quote(id)
	seg, err := segment("job id", id)
	if err != nil {
		return nil, wrap(op, err)
	}
	var events []HistoryEvent
	if err := c.call(ctx, request{method: http.MethodGet, path: c.apiPath("/jobs/" + seg + "/history")}, &events); err != nil {
		return nil, wrap(op, err)
	}
	return events, nil
}
