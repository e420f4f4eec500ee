package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/google/uuid"
)

// Worker serves tasks of the skills registered with Handle. Create it with
// New, register skills, then call Run.
type Worker struct {
	cfg        Config
	log        *slog.Logger
	httpClient *http.Client
	detect     detector

	// Registered before Run, read-only afterwards.
	skills   map[string]*skill
	order    []string
	commands map[string]CommandHandler
	mws      []Middleware
	routes   []route
	started  atomic.Bool

	// Set up by Run before any goroutine starts, read-only afterwards.
	conns      []*conn
	infos      []protocol.SkillInfo
	skillsHash string
	resources  *protocol.Resources
	host, ip   string
	costs      map[string]float64
	extra      map[string]any
	typeLimits map[string]int
	typeSems   map[string]chan struct{}
	taskBase   context.Context // parent of task contexts; outlives Run's ctx
	resultCtx  context.Context // bounds result delivery; outlives Run's ctx
	tasks      sync.WaitGroup
	pollMu     sync.Mutex // the poll state of conns (back-off, round robin)

	mu            sync.Mutex
	running       map[string]*runningTask // until the result is delivered
	busy          int                     // tasks whose handler has not returned
	typeLoad      map[string]int          // busy, by skill type
	polling       int                     // long polls in flight (reservePoll)
	lastSource    *conn                   // where the last poll brought a task; nil if it brought none
	hot           map[string]bool
	stopping      bool
	changed       chan struct{} // closed and replaced on every state change
	registered    chan struct{} // closed at the first registration
	registerOnce  sync.Once
	healthAddress net.Addr
	session       string // identifies this run of the worker
	metrics       *metrics

	blobs    blob.Store // nil: no blob storage
	ownBlobs bool       // opened by New, closed by Run
}

type route struct {
	pattern string
	handler http.Handler
}

// New returns a worker for cfg. It checks the configuration; hardware
// detection and networking wait for Run.
func New(cfg Config) (*Worker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:        cfg,
		log:        cfg.Logger.With("worker_id", cfg.ID),
		httpClient: cfg.HTTPClient,
		detect:     defaultDetector(),
		skills:     map[string]*skill{},
		commands:   map[string]CommandHandler{},
		running:    map[string]*runningTask{},
		typeLoad:   map[string]int{},
		hot:        map[string]bool{},
		changed:    make(chan struct{}),
		registered: make(chan struct{}),
		session:    uuid.NewString(),
	}
	w.metrics = newMetrics(func() float64 { return float64(w.load()) })
	if w.blobs, w.ownBlobs, err = openBlobs(cfg); err != nil {
		return nil, err
	}
	if w.httpClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Results of concurrent tasks, heartbeats and the long poll share
		// the connections to each orchestrator.
		tr.MaxIdleConnsPerHost = max(8, cfg.MaxConcurrentTasks+4)
		if cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS.Clone()
		}
		w.httpClient = &http.Client{Transport: tr}
	}
	return w, nil
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

func (w *Worker) mustNotBeStarted(what string) {
	if w.started.Load() {
		panic("worker: " + what + " called after Run")
	}
}

// Handle registers the handler of a skill (the task type it serves). It
// panics if the name is invalid or taken, or if Run has started, like
// http.ServeMux.Handle.
func (w *Worker) Handle(name string, h Handler, opts ...SkillOption) {
	w.mustNotBeStarted("Handle")
	s, err := newSkill(name, h, opts)
	if err != nil {
		panic("worker: " + err.Error())
	}
	if _, dup := w.skills[name]; dup {
		panic(fmt.Sprintf("worker: skill %q registered twice", name))
	}
	w.skills[name] = s
	w.order = append(w.order, name)
}

// Use adds middleware around every handler. It panics after Run has started.
func (w *Worker) Use(mw ...Middleware) {
	w.mustNotBeStarted("Use")
	w.mws = append(w.mws, mw...)
}

// OnCommand registers the handler of a custom WebSocket command. The
// built-in cancel_task cannot be replaced.
func (w *Worker) OnCommand(name string, h CommandHandler) {
	w.mustNotBeStarted("OnCommand")
	if name == "" || name == protocol.CommandCancelTask || h == nil {
		panic(fmt.Sprintf("worker: cannot register command %q", name))
	}
	w.commands[name] = h
}

// HandleHTTP adds a route (a net/http ServeMux pattern, such as
// "GET /metrics") to the health server next to GET /health.
func (w *Worker) HandleHTTP(pattern string, h http.Handler) {
	w.mustNotBeStarted("HandleHTTP")
	w.routes = append(w.routes, route{pattern, h})
}

// SetHot marks a skill as hot (its model or data is loaded, so it starts
// fast) or not. Orchestrators prefer hot workers. Safe to call at any time.
func (w *Worker) SetHot(skill string, hot bool) {
	w.mu.Lock()
	if w.hot[skill] == hot {
		w.mu.Unlock()
		return
	}
	if hot {
		w.hot[skill] = true
	} else {
		delete(w.hot, skill)
	}
	w.mu.Unlock()
	w.stateChanged()
}

// Refresh tells the worker that something its state depends on changed
// (such as a CapacityChecker's answer): it re-evaluates its status, polls if
// it can, and sends state heartbeats. Safe to call at any time.
func (w *Worker) Refresh() { w.stateChanged() }

// HealthAddr returns the address the health server listens on, or nil when
// it does not run.
func (w *Worker) HealthAddr() net.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthAddress
}

// stateChanged wakes everything that waits on the worker's state and asks
// every orchestrator for a state heartbeat.
func (w *Worker) stateChanged() {
	w.mu.Lock()
	w.changedLocked()
	conns := w.conns
	w.mu.Unlock()
	for _, c := range conns {
		signal(c.kick)
	}
}

func (w *Worker) changedCh() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// waitFor blocks until cond holds or ctx ends (false).
func (w *Worker) waitFor(ctx context.Context, cond func() bool) bool {
	for {
		ch := w.changedCh()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (w *Worker) markRegistered() {
	w.registerOnce.Do(func() { close(w.registered) })
}

// vetoed asks the CapacityChecker (outside the worker's lock, so that it may
// call the worker) which skills cannot take a task now.
func (w *Worker) vetoed() map[string]bool {
	if w.cfg.CapacityChecker == nil {
		return nil
	}
	out := map[string]bool{}
	for _, name := range w.order {
		if !w.cfg.CapacityChecker(name) {
			out[name] = true
		}
	}
	return out
}

// stateLocked computes the worker status and the skills it can take now;
// vetoed comes from w.vetoed.
func (w *Worker) stateLocked(vetoed map[string]bool) (status string, available, hot []string) {
	if w.stopping {
		return protocol.WorkerOffline, nil, nil
	}
	if w.busy >= w.cfg.MaxConcurrentTasks {
		return protocol.WorkerFull, nil, nil
	}
	for _, name := range w.order {
		s := w.skills[name]
		if lim := w.typeLimits[s.typ()]; lim > 0 && w.typeLoad[s.typ()] >= lim {
			continue
		}
		if vetoed[name] {
			continue
		}
		available = append(available, name)
		if w.hot[name] {
			hot = append(hot, name)
		}
	}
	if len(available) == 0 {
		return protocol.WorkerBusy, nil, nil
	}
	return protocol.WorkerIdle, available, hot
}

// reservePoll reserves room for one more long poll and returns the skills
// to ask for. Every poll in flight may bring a task, so a poll is allowed
// only while the busy tasks plus the polls in flight stay below
// MaxConcurrentTasks, and a skill is asked for only while its type has room
// for them too. An extra poll (extraPoller) is allowed only while the last
// poll brought a task. releasePoll ends the reservation.
func (w *Worker) reservePoll(extra bool) (ok bool, available, hot []string) {
	vetoed := w.vetoed()
	w.mu.Lock()
	defer w.mu.Unlock()
	if extra && w.lastSource == nil {
		return false, nil, nil
	}
	return w.reserveLocked(vetoed)
}

// reserveLocked is reservePoll's check and reservation; the caller holds mu.
func (w *Worker) reserveLocked(vetoed map[string]bool) (ok bool, available, hot []string) {
	status, available, hot := w.stateLocked(vetoed)
	if status != protocol.WorkerIdle || w.busy+w.polling >= w.cfg.MaxConcurrentTasks {
		return false, nil, nil
	}
	if w.polling > 0 {
		fits := func(name string) bool {
			typ := w.skills[name].typ()
			lim := w.typeLimits[typ]
			return lim == 0 || w.typeLoad[typ]+w.polling < lim
		}
		available = slices.DeleteFunc(available, func(name string) bool { return !fits(name) })
		hot = slices.DeleteFunc(hot, func(name string) bool { return !fits(name) })
		if len(available) == 0 {
			return false, nil, nil
		}
	}
	w.polling++
	return true, available, hot
}

// unreserve gives back a reservation that was not used for a poll.
func (w *Worker) unreserve() {
	w.mu.Lock()
	w.polling--
	w.mu.Unlock()
}

// releasePoll ends a reservation of reservePoll; source is the orchestrator
// whose poll brought a task (its task is running by now), or nil. It wakes
// pollers waiting for room.
func (w *Worker) releasePoll(source *conn) {
	w.mu.Lock()
	w.polling--
	w.lastSource = source
	w.changedLocked()
	w.mu.Unlock()
}

// releaseAsked ends the reservation of a result that asked for the next
// task; source is the orchestrator that sent one, or nil. An answer
// without one says nothing of the queue (the orchestrator does not look
// while a poll of the worker's waits there), so the extra polls go on.
func (w *Worker) releaseAsked(source *conn) {
	w.mu.Lock()
	w.polling--
	if source != nil {
		w.lastSource = source
	}
	w.changedLocked()
	w.mu.Unlock()
}

// changedLocked wakes the pollers waiting for a change; the caller holds mu.
func (w *Worker) changedLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// heartbeatFor builds the heartbeat for one orchestrator: it lists only the
// tasks that orchestrator delivered.
func (w *Worker) heartbeatFor(c *conn) protocol.Heartbeat {
	vetoed := w.vetoed()
	w.mu.Lock()
	status, available, hot := w.stateLocked(vetoed)
	current := []string{}
	for id, rt := range w.running {
		if rt.task.c == c {
			current = append(current, id)
		}
	}
	w.mu.Unlock()
	slices.Sort(current)
	hb := protocol.Heartbeat{
		WorkerID:        w.cfg.ID,
		Status:          status,
		CurrentTasks:    current,
		AvailableSkills: available,
		HotSkills:       hot,
		SkillsHash:      w.skillsHash,
	}
	if w.cfg.Usage != nil {
		hb.Usage = w.cfg.Usage()
	}
	return hb
}

// registration builds the registration message (without timestamp and
// signature).
func (w *Worker) registration() protocol.Registration {
	vetoed := w.vetoed()
	w.mu.Lock()
	_, available, hot := w.stateLocked(vetoed)
	w.mu.Unlock()
	return protocol.Registration{
		WorkerID:           w.cfg.ID,
		WorkerType:         w.cfg.Type,
		SupportedSkills:    w.infos,
		AvailableSkills:    available,
		HotSkills:          hot,
		Resources:          w.resources,
		InstalledSoftware:  w.cfg.InstalledSoftware,
		InstalledArtifacts: w.cfg.InstalledArtifacts,
		Capabilities: &protocol.Capabilities{
			Hostname:     w.host,
			IPAddress:    w.ip,
			CostPerSkill: w.costs,
			S3ConfigHash: w.s3ConfigHash(),
			Extra:        w.extra,
			WebSockets:   w.cfg.EnableWebSockets,
		},
		SkillsHash: w.skillsHash,
		// A fresh session id per run: a restarted worker re-registering
		// within the same second does not send a byte-identical (and so
		// "replayed") message.
		Metadata: map[string]any{"session": w.session},
	}
}

// prepare computes everything Run needs before its goroutines start.
func (w *Worker) prepare(ctx context.Context) error {
	if len(w.skills) == 0 {
		return errors.New("worker: no skills: register handlers with Handle before Run")
	}
	w.typeLimits = map[string]int{}
	w.typeSems = map[string]chan struct{}{}
	w.costs = maps.Clone(w.cfg.CostPerSkill)
	for _, name := range w.order {
		s := w.skills[name]
		w.infos = append(w.infos, s.info)
		if s.limit > 0 {
			if cur, ok := w.typeLimits[s.typ()]; !ok || s.limit < cur {
				w.typeLimits[s.typ()] = s.limit
			}
		}
		if s.hasPrice {
			if w.costs == nil {
				w.costs = map[string]float64{}
			}
			if _, set := w.cfg.CostPerSkill[name]; !set {
				w.costs[name] = s.price
			}
		}
	}
	for typ, lim := range w.typeLimits {
		w.typeSems[typ] = make(chan struct{}, lim)
	}
	for name := range w.cfg.CostPerSkill {
		if _, ok := w.skills[name]; !ok {
			w.log.Warn("price configured for a skill this worker does not have", "skill", name)
		}
	}

	w.extra = maps.Clone(w.cfg.Extra)
	if w.extra == nil {
		w.extra = map[string]any{}
	}
	w.extra["max_concurrent_tasks"] = w.cfg.MaxConcurrentTasks
	w.extra["websockets"] = w.cfg.EnableWebSockets

	hash, err := skillsHash(w.infos, w.costs, w.cfg.Extra)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	w.skillsHash = hash

	res, warns := w.detect.resolve(ctx, w.cfg.Resources)
	for _, e := range warns {
		w.log.Warn("hardware detection", "error", e)
	}
	w.resources = wireResources(res)
	w.log.Info("resources", "cpu_cores", res.CPUCores, "ram_gb", res.RAMGB, "gpus", len(res.GPUs))

	w.host, w.ip = hostIdentity(ctx)
	conns := make([]*conn, 0, len(w.cfg.Orchestrators))
	for _, o := range w.cfg.Orchestrators {
		conns = append(conns, newConn(w, o))
	}
	w.mu.Lock()
	w.conns = conns
	w.mu.Unlock()
	return nil
}

// skillsHash is the contract hash: SHA-256 of the canonical JSON of the
// skills, prices and extra capabilities, as the upstream SDK computes it.
func skillsHash(infos []protocol.SkillInfo, costs map[string]float64, extra map[string]any) (string, error) {
	if costs == nil {
		costs = map[string]float64{}
	}
	if extra == nil {
		extra = map[string]any{}
	}
	raw, err := json.Marshal(map[string]any{"skills": infos, "capabilities": costs, "extra": extra})
	if err != nil {
		return "", fmt.Errorf("skills are not JSON: %w", err)
	}
	canon, err := protocol.CanonicalJSON(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// hostIdentity returns the host name and an address it resolves to.
func hostIdentity(ctx context.Context) (string, string) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "unknown", "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil || len(addrs) == 0 {
		return host, "127.0.0.1"
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil && !ip.IsLoopback() {
			return host, a
		}
	}
	return host, addrs[0]
}

// Run serves tasks until ctx ends, then shuts down gracefully: it stops
// polling, sends a signed "offline" heartbeat to every orchestrator, lets
// running tasks finish and report for up to ShutdownTimeout, then cancels
// the rest (they report "cancelled"), waits as long again for them, and
// returns; results still undelivered then are abandoned, so Run returns
// within about three ShutdownTimeouts plus one RequestTimeout. It returns nil
// after a graceful shutdown, or an error if the worker cannot start, or,
// after shutting down, an error wrapping ErrCredentialsRejected that names
// the setting to fix when every orchestrator refused the worker's
// credentials (see Config.RegistrationMaxAuthFailures). Run may be called
// once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	if err := w.prepare(ctx); err != nil {
		return err
	}
	stopHealth, err := w.startHealth()
	if err != nil {
		return err
	}
	defer stopHealth()

	taskBase, stopTasks := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopTasks(errShutdown)
	resultCtx, stopResults := context.WithCancel(context.WithoutCancel(ctx))
	defer stopResults()
	w.taskBase, w.resultCtx = taskBase, resultCtx

	// runCtx also ends when every orchestrator has refused the worker's
	// credentials: then nothing is left to serve.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	var refusedMu sync.Mutex
	var refused []error

	w.log.Info("worker starting", "skills", w.order, "orchestrators", len(w.conns), "max_concurrent_tasks", w.cfg.MaxConcurrentTasks)
	var loops sync.WaitGroup
	for _, c := range w.conns {
		loops.Go(func() {
			err := c.manage(runCtx)
			if err == nil {
				return
			}
			refusedMu.Lock()
			refused = append(refused, err)
			all := len(refused) == len(w.conns)
			joined := errors.Join(refused...)
			refusedMu.Unlock()
			if all {
				stopRun(joined)
			} else {
				c.log.Error("serving the other orchestrators without this one")
			}
		})
		if w.cfg.EnableWebSockets {
			loops.Go(func() { c.listen(runCtx) })
		}
		if w.cfg.STS {
			loops.Go(func() { c.rotateTokens(runCtx) })
		}
	}
	loops.Go(func() { w.pollLoop(runCtx) })

	<-runCtx.Done()
	rejected := context.Cause(runCtx)
	if !errors.Is(rejected, ErrCredentialsRejected) {
		rejected = nil
	}
	if rejected != nil {
		w.log.Error("worker stopping: every orchestrator refused its credentials", "running_tasks", w.load())
	} else {
		w.log.Info("worker stopping", "running_tasks", w.load())
	}
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	w.stateChanged()
	loops.Wait()

	w.sendOffline(context.WithoutCancel(ctx))
	w.drain(stopTasks)
	if w.ownBlobs {
		if err := w.blobs.Close(); err != nil {
			w.log.Warn("close blob storage", "error", err)
		}
	}
	w.log.Info("worker stopped")
	return rejected
}

var (
	errShutdown  = errors.New("worker shut down")
	errCancelled = errors.New("task cancelled by the orchestrator")
)

// sendOffline tells every orchestrator the worker is going away.
func (w *Worker) sendOffline(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range w.conns {
		if !c.isRegistered() {
			continue
		}
		wg.Go(func() {
			if err := c.heartbeat(ctx, protocol.WorkerOffline); err != nil {
				c.log.Warn("offline heartbeat failed", "error", err)
			}
		})
	}
	wg.Wait()
}

// drain waits for running tasks, cancels them after ShutdownTimeout and
// gives them as long again to report; tasks whose handler still has not
// returned get a "cancelled" result sent for them (a handler that ignores
// its context keeps its goroutine until it returns).
func (w *Worker) drain(stopTasks context.CancelCauseFunc) {
	done := make(chan struct{})
	go func() {
		w.tasks.Wait()
		close(done)
	}()
	timeout := w.cfg.ShutdownTimeout
	if n := w.load(); n > 0 {
		w.log.Info("waiting for running tasks", "tasks", n, "timeout", timeout)
	}
	if waitClosed(done, timeout) {
		return
	}
	w.log.Warn("shutdown timeout: cancelling running tasks", "tasks", w.load())
	stopTasks(errShutdown)
	if waitClosed(done, timeout) {
		return
	}
	// What is left: handlers ignoring their context, and results still being
	// delivered (abandoned when Run returns).
	w.mu.Lock()
	left := slices.Collect(maps.Values(w.running))
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, rt := range left {
		if rt.returned.Load() {
			rt.task.Logger().Warn("result still undelivered at shutdown; abandoning it")
			continue
		}
		rt.task.Logger().Error("handler ignored cancellation; reporting the task cancelled")
		wg.Go(func() { rt.report(w.cancelledResult(rt.task)) })
	}
	reported := make(chan struct{})
	go func() {
		wg.Wait()
		close(reported)
	}()
	waitClosed(reported, timeout) // then Run returns and aborts the rest
}

func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func (w *Worker) load() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// startHealth serves GET /health (and HandleHTTP routes) on HealthAddr.
func (w *Worker) startHealth() (stop func(), err error) {
	if w.cfg.HealthAddr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = rw.Write([]byte("OK"))
	})
	ownMetrics := false
	for _, r := range w.routes {
		mux.Handle(r.pattern, r.handler)
		ownMetrics = ownMetrics || r.pattern == "GET /metrics" || r.pattern == "/metrics"
	}
	if !ownMetrics {
		mux.Handle("GET /metrics", w.metrics.handler())
	}
	ln, err := net.Listen("tcp", w.cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("worker: health server: %w", err)
	}
	w.mu.Lock()
	w.healthAddress = ln.Addr()
	w.mu.Unlock()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("health server stopped", "error", err)
		}
	}()
	w.log.Info("health server listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		w.mu.Lock()
		w.healthAddress = nil
		w.mu.Unlock()
	}, nil
}

// handleCommand runs a command received over a WebSocket.
func (w *Worker) handleCommand(ctx context.Context, c *conn, cmd protocol.Command) {
	if cmd.Command == protocol.CommandCancelTask {
		if cmd.TaskID == "" {
			c.log.Warn("cancel_task without task_id ignored")
			return
		}
		w.cancelTask(cmd.TaskID, c, "WebSocket command")
		return
	}
	h := w.commands[cmd.Command]
	if h == nil {
		c.log.Warn("unknown command ignored", "command", cmd.Command)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("command handler panicked", "command", cmd.Command, "panic", r)
		}
	}()
	if err := h(ctx, cmd); err != nil {
		c.log.Error("command handler failed", "command", cmd.Command, "error", err)
	}
}

// cancelTask cancels a running task delivered by c. Unknown ids are ignored.
func (w *Worker) cancelTask(id string, c *conn, via string) {
	w.mu.Lock()
	rt := w.running[id]
	w.mu.Unlock()
	if rt == nil || rt.task.c != c {
		c.log.Debug("cancel for a task not running here ignored", "task_id", id, "via", via)
		return
	}
	rt.task.Logger().Info("task cancelled by the orchestrator", "via", via)
	rt.cancel(errCancelled)
}
