package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Each Store holds one pub/sub connection, subscribed to the ready channel
// (payload: how many jobs became ready) and the queue channel (payload:
// the name of a queue that received tasks, after "<shard index>|" with
// several shards); with several shards, one more per shard, subscribed to
// the shard's signal channel (see shardWatch). The scripts that queue work
// publish in the same atomic step. go-redis pings the connection and reconnects it;
// messages sent while it was down are lost, so after every resubscription,
// as soon as Redis answers again, the store wakes all its NextReady waiters
// and tells every watcher about every non-empty queue.

// subscribe opens the pub/sub connection and waits until both channels are
// subscribed, so that nothing published after Open returns is missed.
func (s *Store) subscribe(ctx context.Context) (*goredis.PubSub, error) {
	channels := []string{s.g.readyChannel(), s.g.queueChannel()}
	ps := s.rdb.Subscribe(ctx, channels...)
	if err := confirmed(ctx, ps, len(channels)); err != nil {
		return nil, fail(ctx, "redis store: subscribe", err)
	}
	return ps, nil
}

// subscribeShards subscribes to every shard's signal channel, each on a
// connection of its own: a shard channel (SSUBSCRIBE) is served by the
// master of its slot, and messages SPUBLISHed to it stay on that master,
// where a PUBLISH would be sent to every node of a Cluster.
func (s *Store) subscribeShards(ctx context.Context) ([]*goredis.PubSub, error) {
	out := make([]*goredis.PubSub, 0, len(s.shards))
	for _, k := range s.shards {
		ps := s.rdb.SSubscribe(ctx, k.signalChannel())
		if err := confirmed(ctx, ps, 1); err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, fail(ctx, "redis store: subscribe to shard signals", err)
		}
		out = append(out, ps)
	}
	return out, nil
}

// confirmed waits for n subscriptions of ps to be confirmed; on failure it
// closes ps.
func confirmed(ctx context.Context, ps *goredis.PubSub, n int) error {
	for range n {
		msg, err := ps.Receive(ctx)
		if err == nil {
			if _, ok := msg.(*goredis.Subscription); !ok {
				err = fmt.Errorf("unexpected %T", msg)
			}
		}
		if err != nil {
			_ = ps.Close()
			return err
		}
	}
	return nil
}

// listenShard passes shard i's signals to the Store's shardWatch until the
// connection is closed. A resubscription counts as a signal: messages may
// have been lost meanwhile.
func (s *Store) listenShard(i int, msgs <-chan any) {
	defer s.wg.Done()
	for range msgs {
		s.watch.signal(i)
	}
}

// listen dispatches pub/sub messages until the connection is closed.
func (s *Store) listen(msgs <-chan any) {
	defer s.wg.Done()
	for msg := range msgs {
		switch m := msg.(type) {
		case *goredis.Subscription:
			// The first subscriptions were consumed by subscribe: this is a
			// reconnection, and messages may have been lost meanwhile.
			if m.Kind == "subscribe" {
				select {
				case s.resync <- struct{}{}:
				default: // one is pending already
				}
			}
		case *goredis.Message:
			switch m.Channel {
			case s.g.readyChannel():
				s.waiters.wake(parseCount(m.Payload))
			case s.g.queueChannel():
				if !s.hints.echo(m.Payload) { // the commit heard its own
					s.heard([]string{m.Payload})
				}
			}
		}
	}
}

// resyncLoop catches up after each reconnection, once Redis answers
// commands again: it wakes every NextReady waiter and tells every watcher
// about every non-empty queue.
func (s *Store) resyncLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.resync:
		}
		var names []string
		for pause := 50 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
			var err error
			names, err = s.queueNames(s.ctx)
			if err == nil {
				break
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(pause):
			}
		}
		s.hints.reset()
		s.watch.signal(-1)
		s.waiters.wakeAll()
		s.notifyWatchers(names...)
	}
}

// splitQueueMessage reads a sharded deployment's queue message,
// "<shard>|<queue>" (a queue name starts with "worker:" or "pending:");
// -1 when it names no shard.
func splitQueueMessage(payload string) (string, int) {
	pre, name, ok := strings.Cut(payload, "|")
	if !ok {
		return payload, -1
	}
	k, err := strconv.Atoi(pre)
	if err != nil || k < 0 {
		return payload, -1
	}
	return name, k
}

func (s *Store) notifyWatchers(names ...string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for w := range s.watchers {
		w.add(names...)
	}
}

// watcher coalesces queue names for one WatchQueues caller.
type watcher struct {
	mu      sync.Mutex
	pending map[string]struct{}
	signal  chan struct{}
}

func (w *watcher) add(names ...string) {
	if len(names) == 0 {
		return
	}
	w.mu.Lock()
	for _, n := range names {
		w.pending[n] = struct{}{}
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.pending))
	for n := range w.pending {
		names = append(names, n)
	}
	clear(w.pending)
	return names
}

// WatchQueues implements store.TaskQueues. The queues that hold tasks when
// it is called are reported first, then every queue that receives tasks,
// from any process. The channel closes when ctx ends or the store closes.
func (s *Store) WatchQueues(ctx context.Context) (<-chan string, error) {
	w := &watcher{pending: map[string]struct{}{}, signal: make(chan struct{}, 1)}
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return nil, errClosed
	}
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	s.wmu.Unlock()
	remove := func() {
		s.wmu.Lock()
		delete(s.watchers, w)
		s.wmu.Unlock()
	}
	names, err := s.queueNames(ctx)
	if err != nil {
		remove()
		s.wg.Done()
		return nil, fail(ctx, "watch queues", err)
	}
	w.add(names...)
	out := make(chan string)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer remove()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.ctx.Done():
				return
			case <-w.signal:
			}
			for _, n := range w.take() {
				select {
				case out <- n:
				case <-ctx.Done():
					return
				case <-s.ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
