package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// maxCommitsOut is how many batches of commits may be out at once. With
// one, every commit waits for the batch out, and the batching gained
// nothing; two, four and eight gained alike, two with the fewest round
// trips (BENCHMARKS.md, "Commits that share a round trip").
const maxCommitsOut = 2

// commitBatcher sends the commit scripts of concurrent writers to Redis
// together. A commit goes out at once, alone, while fewer than
// maxCommitsOut batches are out; otherwise it waits, and when a batch
// comes back the first commit that waits takes every waiting one out as
// one pipeline. Under load a round trip to Redis (a write that wakes it,
// its read, and a read of the answer) costs the orchestrator and Redis
// more than the script it carries, so several commits share one; with
// little load nothing waits and nothing changes. See BENCHMARKS.md.
type commitBatcher struct {
	rdb    goredis.UniversalClient
	script *goredis.Script

	mu      sync.Mutex
	out     int           // batches out
	waiting []*commitCall // in order of arrival
}

// commitCall is one writer's commit.
type commitCall struct {
	ctx  context.Context
	keys []string
	argv []any
	res  []string
	err  error
	// turn is given the batch this call is to send (it is the batch's
	// first call), or nil when another call sent it and res and err are
	// set. Buffered, so the giver never waits.
	turn chan []*commitCall
}

func newCommitBatcher(rdb goredis.UniversalClient, script *goredis.Script) *commitBatcher {
	return &commitBatcher{rdb: rdb, script: script}
}

// run runs the script with keys and argv, alone or in a batch, and returns
// its reply. Once sent, a commit is waited for even when ctx ends (the
// store's client bounds the wait with its read timeout), since it may have
// been carried out; one whose ctx ended before it went out fails unsent.
func (b *commitBatcher) run(ctx context.Context, keys []string, argv []any) ([]string, error) {
	c := &commitCall{ctx: ctx, keys: keys, argv: argv}
	b.mu.Lock()
	if b.out < maxCommitsOut {
		b.out++
		b.mu.Unlock()
		b.send([]*commitCall{c})
		return c.res, c.err
	}
	c.turn = make(chan []*commitCall, 1)
	b.waiting = append(b.waiting, c)
	b.mu.Unlock()
	if batch := <-c.turn; batch != nil {
		b.send(batch)
	}
	return c.res, c.err
}

// send sends a batch, sets each call's reply, then passes the batch's place
// out to the commits that waited meanwhile, or gives it up.
func (b *commitBatcher) send(batch []*commitCall) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		live = append(live, c)
	}
	// The batch carries others' commits: the sender's ctx ending must not
	// cut them off (nor does it end any single commit once sent).
	ctx := context.WithoutCancel(batch[0].ctx)
	switch len(live) {
	case 0:
	case 1:
		c := live[0]
		c.res, c.err = b.script.Run(ctx, b.rdb, c.keys, c.argv...).StringSlice()
	default:
		b.sendPipelined(ctx, live)
	}

	b.mu.Lock()
	next := b.waiting
	b.waiting = nil
	if len(next) == 0 {
		b.out--
	}
	b.mu.Unlock()
	for _, c := range batch[1:] { // batch[0] is the sender
		c.turn <- nil
	}
	if len(next) > 0 {
		next[0].turn <- next
	}
}

// sendPipelined sends calls as one pipeline of EVALSHAs. A script the
// server does not know (flushed, or a new server) is loaded by the first
// call that finds it missing, as Script.Run does, and the others follow.
func (b *commitBatcher) sendPipelined(ctx context.Context, calls []*commitCall) {
	pipe := b.rdb.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = b.script.EvalSha(ctx, pipe, c.keys, c.argv...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, c := range calls {
		c.res, c.err = cmds[i].StringSlice()
		if c.err != nil && goredis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// Not run: EVALSHA ran nothing, so running it again is safe.
			c.res, c.err = b.script.Run(ctx, b.rdb, c.keys, c.argv...).StringSlice()
		}
	}
}
