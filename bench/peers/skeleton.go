package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

// skeletonSystem is a floor, not a peer: the HTTP exchanges and Redis
// round trips a job of ours makes, with nothing in them. A create, a
// worker's poll and its result are each one HTTP exchange on loopback, and
// each handler makes one round trip to Redis (a script that returns 1);
// tasks wait in a Go channel, bodies are a few fixed bytes, nothing is
// encoded, signed or stored. Whatever the orchestrator does on top costs
// more, so no build of ours on this protocol outruns it on this machine.
func skeletonSystem(redisURL string) system {
	return system{name: "skeleton", run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runSkeleton(ctx, o, redisURL)
	}}
}

// noopScript is one round trip that runs Lua and touches no key.
var noopScript = goredis.NewScript(`return 1`)

func runSkeleton(ctx context.Context, o harness.Options, redisURL string) (harness.Result, error) {
	var width int
	switch o.Workload {
	case "one-task":
		width = 1
	case "fanout-10":
		width = 10
	default:
		return harness.Result{}, fmt.Errorf("skeleton: workload %q not implemented (one-task, fanout-10)", o.Workload)
	}
	ropts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return harness.Result{}, err
	}
	ropts.PoolSize, ropts.Protocol = 128, 2 // as our store and tuned asynq
	rdb := goredis.NewClient(ropts)
	defer rdb.Close()
	meter := harness.NewRedisMeter(rdb)
	o.BeforeMeasure = func() { meter.Reset(ctx) }

	s := &skeleton{rdb: rdb, ends: harness.NewEnds(), width: width,
		tasks: make(chan string, 1<<16), left: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return harness.Result{}, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", s.create)
	mux.HandleFunc("GET /next", s.next)
	mux.HandleFunc("POST /result", s.result)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}

	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range o.Workers * o.Concurrency {
		wg.Go(func() { s.work(wctx, hc, base) })
	}
	defer func() { stopWorkers(); wg.Wait() }()

	var seq atomic.Int64
	submit := func(ctx context.Context) (string, error) {
		id := strconv.FormatInt(seq.Add(1), 10)
		return id, exchange(ctx, hc, http.MethodPost, base+"/jobs", id)
	}
	res, err := harness.Drive(ctx, o, submit, s.ends)
	if err == nil {
		meter.Measure(ctx, &res)
	}
	return res, err
}

type skeleton struct {
	rdb   *goredis.Client
	ends  *harness.Ends
	width int
	tasks chan string // job ids, one per task

	mu   sync.Mutex
	left map[string]int // tasks a job still waits for
}

// roundTrip is the one Redis round trip of a handler.
func (s *skeleton) roundTrip(w http.ResponseWriter, r *http.Request) bool {
	if err := noopScript.Run(r.Context(), s.rdb, nil).Err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return false
	}
	return true
}

// request reads the job id a create or a result carries and makes the
// handler's round trip; false: it failed and was answered.
func (s *skeleton) request(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, _ := io.ReadAll(r.Body)
	if !s.roundTrip(w, r) {
		return "", false
	}
	return string(body), true
}

func (s *skeleton) create(w http.ResponseWriter, r *http.Request) {
	id, ok := s.request(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	s.left[id] = s.width
	s.mu.Unlock()
	for range s.width {
		s.tasks <- id
	}
	_, _ = io.WriteString(w, id)
}

// next answers a long poll with a task, or 204 after a second.
func (s *skeleton) next(w http.ResponseWriter, r *http.Request) {
	select {
	case id := <-s.tasks:
		if !s.roundTrip(w, r) {
			s.tasks <- id
			return
		}
		_, _ = io.WriteString(w, id)
	case <-time.After(time.Second):
		w.WriteHeader(http.StatusNoContent)
	case <-r.Context().Done():
	}
}

func (s *skeleton) result(w http.ResponseWriter, r *http.Request) {
	id, ok := s.request(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	s.left[id]--
	done := s.left[id] == 0
	if done {
		delete(s.left, id)
	}
	s.mu.Unlock()
	if done {
		s.ends.Ended(id, time.Now(), true)
	}
	w.WriteHeader(http.StatusNoContent)
}

// work is one worker slot: poll, then post the result at once.
func (s *skeleton) work(ctx context.Context, hc *http.Client, base string) {
	for ctx.Err() == nil {
		id, err := get(ctx, hc, base+"/next")
		if err != nil || id == "" {
			continue
		}
		_ = exchange(ctx, hc, http.MethodPost, base+"/result", id)
	}
}

func exchange(ctx context.Context, hc *http.Client, method, url, body string) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return errors.New(resp.Status)
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", err
	}
	return string(b), err
}
