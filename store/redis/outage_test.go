package redis_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/store"
	redisstore "github.com/avtomatika-ai/avtomatika-go/store/redis"
)

// viaProxy rewrites a redis:// URL to go through the proxy.
func viaProxy(t *testing.T, url string) (*testenv.Proxy, string) {
	host := strings.TrimPrefix(strings.TrimPrefix(url, "redis://"), "rediss://")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	db := ""
	if i := strings.Index(host, "/"); i >= 0 {
		host, db = host[:i], host[i:]
	}
	if strings.HasPrefix(url, "rediss://") || strings.Contains(url, "@") {
		t.Skip("the outage tests need a plain redis:// URL without credentials")
	}
	p := testenv.NewProxy(t, host)
	return p, "redis://" + p.Addr() + db
}

func TestUnreachableRedisIsUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = redisstore.Open(ctx, redisstore.Options{URL: "redis://" + addr + "/0"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

func TestRedisOutage(t *testing.T) {
	t.Parallel()
	url := testenv.URL(t, testenv.RedisVar)
	p, purl := viaProxy(t, url)
	prefix := newPrefix(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := openStore(t, redisstore.Options{URL: purl, Prefix: prefix})
	direct := openStore(t, redisstore.Options{URL: url, Prefix: prefix})
	if err := s.CreateJob(ctx, job("j"), store.Effects{}); err != nil {
		t.Fatal(err)
	}
	watch, err := s.WatchQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The waiter loops like the engine's executors: a take that fails on
	// an unreachable Redis is retried after a pause.
	waiter := make(chan string, 1)
	go func() {
		for {
			id, _, err := s.NextReady(ctx, time.Minute)
			if errors.Is(err, store.ErrUnavailable) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Error(err)
			}
			waiter <- id
			return
		}
	}()
	time.Sleep(100 * time.Millisecond)

	p.Cut()
	for name, call := range map[string]func() error{
		"GetJob":    func() error { _, err := s.GetJob(ctx, "j"); return err },
		"UpdateJob": func() error { return s.UpdateJob(ctx, job("j"), store.Effects{}) },
		"PushReady": func() error { return s.PushReady(ctx, "x") },
		"Incr":      func() error { _, err := s.Incr(ctx, "c", 1, time.Now().Add(time.Minute)); return err },
		"Ping":      func() error { return s.Ping(ctx) },
	} {
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s during an outage: %v, want ErrUnavailable", name, err)
		}
	}
	// Work arrives while the store's subscription is down: its messages
	// are lost.
	if err := direct.PushReady(ctx, "during-outage"); err != nil {
		t.Fatal(err)
	}
	enqueueVia(t, direct, task("t-outage", "w-outage", 1))
	select {
	case id := <-waiter:
		t.Fatalf("waiter returned %q during the outage", id)
	default:
	}

	p.Restore() // same address: the store reconnects by itself
	select {
	case id := <-waiter:
		if id != "during-outage" {
			t.Fatalf("after reconnecting got %q", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a NextReady waiter missed a job pushed while its subscription was down")
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case name := <-watch:
			if name == store.WorkerQueue("w-outage") {
				return
			}
		case <-deadline:
			t.Fatal("a watcher missed a queue filled while its subscription was down")
		}
	}
}
