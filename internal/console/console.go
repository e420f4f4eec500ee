// Package console is the orchestrator's web console, served at /console/:
// server-rendered HTML pages (html/template, embedded) with htmx (vendored
// in static/htmx) for partial updates and Server-Sent Events for live ones.
//
// Nobody is anonymous: the login form takes an API token, kept in an
// HttpOnly, SameSite=Strict cookie scoped to /console/. The admin token
// (ADMIN_TOKEN) sees every job; a client token sees only that client's
// jobs, through the client API's own isolation rules (api.Server.JobFor,
// ListJobs, JobEventsFor). Every action (POST) needs the session's CSRF
// token, in the X-CSRF-Token header or the csrf form field, and passes
// net/http's cross-origin protection (Sec-Fetch-Site, Origin).
package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Prefix is where the console is served.
const Prefix = "/console/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/console.css static/console.js static/htmx/htmx.min.js static/uplot/uPlot.iife.min.js static/uplot/uPlot.min.css
var staticFS embed.FS

// Options configures a Console.
type Options struct {
	API     *api.Server    // isolation rules and job reads
	Engine  *engine.Engine // workers, queues, actions
	Clients *auth.Clients  // client tokens
	// Schedules lists the scheduler's schedules (admin page); nil: none.
	Schedules func(ctx context.Context) ([]protocol.ScheduleInfo, error)
	// RenderSVG lays out Graphviz DOT source as SVG (the job page's
	// blueprint graph); nil: the job page lists the states instead.
	RenderSVG func(ctx context.Context, dot string) ([]byte, error)
	Logger    *slog.Logger
	// OnListen, when set, is called (and must not block) when a page
	// opens a stream of job changes.
	OnListen func()
	// CatchUp, when set, is how long after a stream of job changes opens
	// it tells the page to reload once more: for the changes made before
	// every process knew that a page listens (the orchestrator's
	// audience).
	CatchUp time.Duration
}

// Console serves the web console. Make it with New, mount Handler at
// Prefix, feed it events with Notify, and Close it before shutting the
// HTTP server down (it ends the live streams).
type Console struct {
	opts   Options
	mux    *http.ServeMux
	pages  map[string]*template.Template
	live   *hub
	cop    *http.CrossOriginProtection
	graph  *graphs // nil without Options.RenderSVG
	topics topicHub

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a console over the API server's reads.
func New(opts Options) (*Console, error) {
	if opts.API == nil || opts.Engine == nil || opts.Clients == nil {
		return nil, errors.New("console: API, engine and clients are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Console{opts: opts, mux: http.NewServeMux(), live: newHub(), cop: http.NewCrossOriginProtection(), closed: make(chan struct{})}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.refuse(w, r, http.StatusForbidden, "Refused: a cross-origin request. Use the console's own pages.")
	}))
	c.topics.watches = map[string]*watch{}
	if opts.RenderSVG != nil {
		c.graph = &graphs{render: opts.RenderSVG, cache: map[[32]byte]template.HTML{}}
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Handler serves the console's routes (under Prefix).
func (c *Console) Handler() http.Handler { return c.mux }

// Close ends the live streams in progress (and refuses new ones), so that
// an HTTP server's Shutdown does not wait for them, and waits for the live
// lists' watchers to end. Close may be called more than once.
func (c *Console) Close() {
	c.closeOnce.Do(func() { close(c.closed) })
	// No watcher starts once closed is (subscribeTopic checks it under
	// the lock); those running end on closed.
	c.topics.mu.Lock()
	c.topics.mu.Unlock() //nolint:staticcheck // a barrier for subscribeTopic
	c.topics.running.Wait()
}

// Redirect answers "/" with a redirect to the console.
func Redirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix, http.StatusFound)
}

func (c *Console) routes() {
	c.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"jobs", http.StatusFound)
	})
	c.mux.Handle("GET "+Prefix+"static/", c.static())
	c.mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	c.mux.Handle("POST "+Prefix+"login", c.cop.Handler(http.HandlerFunc(c.login)))
	c.mux.Handle("POST "+Prefix+"logout", c.action(c.logout))

	c.mux.Handle("GET "+Prefix+"jobs", c.page(c.jobs))
	c.mux.Handle("GET "+Prefix+"jobs/counts", c.page(c.jobCounts))
	c.mux.Handle("GET "+Prefix+"jobs/{id}", c.page(c.job))
	c.mux.Handle("GET "+Prefix+"jobs/{id}/live", c.page(c.jobLive))
	c.mux.Handle("GET "+Prefix+"live", c.page(c.listLive))
	c.mux.Handle("POST "+Prefix+"jobs/{id}/cancel", c.action(c.cancel))
	c.mux.Handle("POST "+Prefix+"jobs/{id}/approve", c.action(c.approve))
	c.mux.Handle("POST "+Prefix+"jobs/cancel", c.action(c.bulkCancel))
	c.mux.Handle("POST "+Prefix+"jobs/{id}/retry", c.action(c.retry))
	c.mux.Handle("POST "+Prefix+"jobs/retry", c.action(c.bulkRetry))
	c.mux.Handle("GET "+Prefix+"quarantine", c.page(c.quarantine))
	c.mux.Handle("GET "+Prefix+"workers", c.page(c.workers))
	c.mux.Handle("GET "+Prefix+"workers/{id}", c.page(c.worker))
	c.mux.Handle("GET "+Prefix+"queues", c.page(c.queues))
	c.mux.Handle("GET "+Prefix+"schedules", c.page(c.schedules))
	c.mux.Handle(Prefix, c.page(func(w http.ResponseWriter, r *http.Request, v *viewer) {
		c.render(w, r, http.StatusNotFound, "notfound", v, map[string]any{"What": "This page"})
	}))
}

// --- sessions ---

// cookieName holds the session: the token itself, readable by no script
// (HttpOnly), sent with no cross-site request (SameSite=Strict), and only
// to the console's paths, so that every orchestrator of a deployment
// accepts it without shared session state.
const cookieName = "avtomatika_console"

// sessionTTL is how long a login lasts.
const sessionTTL = 12 * time.Hour

// viewer is who is logged in.
type viewer struct {
	Admin bool
	Name  string // the client's name; "admin" for the admin token
	CSRF  string
}

// owner is the viewer's owner for the API's reads.
func (v *viewer) owner() string {
	if v.Admin {
		return api.AnyOwner
	}
	return v.Name
}

// csrfToken derives a session's CSRF token from its token: pages carry it,
// actions must send it back; without the token nobody can compute it, and
// every orchestrator derives the same one.
func csrfToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("avtomatika console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// identify returns who token belongs to, or nil.
func (c *Console) identify(token string) *viewer {
	if token == "" {
		return nil
	}
	if c.opts.API.IsAdminToken(token) {
		return &viewer{Admin: true, Name: "admin", CSRF: csrfToken(token)}
	}
	if cl, ok := c.opts.Clients.Lookup(token); ok && cl.Name != "" {
		return &viewer{Name: cl.Name, CSRF: csrfToken(token)}
	}
	return nil
}

// session returns the logged-in viewer of r, or nil.
func (c *Console) session(r *http.Request) *viewer {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	return c.identify(ck.Value)
}

type pageHandler func(w http.ResponseWriter, r *http.Request, v *viewer)

// page serves a logged-in viewer; others go to the login form (htmx
// requests and event streams get 401).
func (c *Console) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := c.session(r)
		if v == nil {
			if r.Header.Get("HX-Request") != "" || strings.HasSuffix(r.URL.Path, "/live") {
				w.Header().Set("HX-Redirect", Prefix+"login")
				http.Error(w, "log in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, v)
	})
}

// action serves a POST of a logged-in viewer that carries the session's
// CSRF token and passes the cross-origin check; anything else is refused
// (403) before the handler runs.
func (c *Console) action(h pageHandler) http.Handler {
	return c.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := c.session(r)
		if v == nil {
			c.refuse(w, r, http.StatusUnauthorized, "Log in first.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			c.refuse(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		sent := r.Header.Get("X-CSRF-Token")
		if sent == "" {
			sent = r.PostForm.Get("csrf")
		}
		if subtle.ConstantTimeCompare([]byte(sent), []byte(v.CSRF)) != 1 {
			c.refuse(w, r, http.StatusForbidden, "Refused: the request carries no valid CSRF token. Reload the page and try again.")
			return
		}
		h(w, r, v)
	}))
}

// maxFormBytes bounds a console form.
const maxFormBytes = 64 << 10

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.refuse(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	token, next := strings.TrimSpace(r.PostForm.Get("token")), safeNext(r.PostForm.Get("next"))
	if c.identify(token) == nil {
		c.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"Next": next, "Error": "Unknown token: use an API client token or the admin token."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: Prefix, MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *viewer) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// safeNext keeps a post-login destination inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "jobs"
	}
	return next
}

// --- rendering ---

// static serves the embedded CSS and scripts (no directory listings).
func (c *Console) static() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded folder exists: a build error
	}
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// securityHeaders go on every page: scripts only from the console itself,
// no framing, no referrer outside the site, nothing cached.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// render writes a page (or, for an htmx request that names a fragment in
// data["Fragment"], only that fragment).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *viewer, data map[string]any) {
	t, ok := c.pages[page]
	if !ok {
		c.opts.Logger.Error("console: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Viewer"] = v
	data["Page"] = page
	name := "layout"
	if f, _ := data["Fragment"].(string); f != "" {
		name = f
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.opts.Logger.Error("console: render failed", "page", page, "path", r.URL.Path, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// refuse answers an action that cannot run, as a page (or a short message
// for htmx, which shows it).
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "message", c.session(r), map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// fail answers an error of a read or an action.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	switch {
	case errors.Is(err, engine.ErrJobNotFound):
		c.render(w, r, http.StatusNotFound, "notfound", v, map[string]any{"What": "Job " + r.PathValue("id")})
	case errors.Is(err, api.ErrInvalidQuery):
		c.render(w, r, http.StatusBadRequest, "message", v, map[string]any{"Title": "Bad request", "Message": err.Error()})
	case errors.Is(err, context.Canceled):
	default:
		c.opts.Logger.Warn("console: request failed", "path", r.URL.Path, "error", err)
		c.render(w, r, http.StatusServiceUnavailable, "message", v, map[string]any{"Title": "Unavailable",
			"Message": "The orchestrator could not answer. Try again shortly."})
	}
}
