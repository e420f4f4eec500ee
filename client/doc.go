// Package client is the Go client of the Avtomatika orchestrator's client
// API: it creates jobs through blueprint endpoints, reads, waits for,
// cancels, approves and lists them, uploads and downloads their files
// (UploadURL and UploadPresigned, UploadFile, DownloadFile), and reads
// workers, blueprints and their graphs.
//
// A Client is made once with New and shared; it is safe for concurrent use.
// Every call takes a context.Context, which bounds it (the default HTTP
// client has no timeout of its own):
//
//	c, err := client.New("http://localhost:8080", os.Getenv("CLIENT_TOKEN"))
//	id, err := c.CreateJob(ctx, "/jobs/full_showcase", map[string]any{"path": "/in.mp4"})
//	job, err := c.Wait(ctx, id, client.PollEvery(500*time.Millisecond),
//		client.OnProgress(func(j *protocol.Job) { fmt.Printf("%3.0f%% %s\n", j.Progress*100, j.Status) }))
//
// Routes live under /api/{version} (version "v1" unless WithAPIVersion says
// otherwise); each request carries the token in the X-Client-Token header.
// The token never appears in errors, and String hides it. When a redirect
// leaves the orchestrator's origin the token is dropped.
//
// # Errors
//
// Every error names the operation and the job or blueprint it was about.
// A non-2xx answer is an *Error with the status code, the server's message
// and any Retry-After; errors.Is matches it against a sentinel per status:
// ErrInvalid (400), ErrUnauthorized (401), ErrForbidden (403), ErrNotFound
// (404, also for another client's job), ErrConflict (409), ErrTooLarge (413),
// ErrRateLimited (429) and ErrServer (5xx). Arguments refused before any
// request is sent (an empty job id, say) also match ErrInvalid. Transport
// failures keep their cause, so errors.Is(err, context.DeadlineExceeded)
// works.
//
// Calls are not retried, with one exception: Wait tolerates a bounded number
// of consecutive transient failures (network errors, 5xx, short 429s) while
// it polls; see MaxRetries.
package client
