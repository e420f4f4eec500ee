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
	sha    any // script's SHA1, boxed once for every command's head

	mu      sync.Mutex
	out     int           // batches out
	waiting []*commitCall // in order of arrival
}

// commitCall is one writer's commit.
type commitCall struct {
	ctx context.Context
	cmd []any // EVALSHA, the script's SHA1, KEYS' count, KEYS, ARGV (see head)
	res []string
	err error
	// turn is given the batch this call is to send (it is the batch's
	// first call), or nil when another call sent it and res and err are
	// set. Buffered, so the giver never waits.
	turn chan []*commitCall
}

func newCommitBatcher(rdb goredis.UniversalClient, script *goredis.Script) *commitBatcher {
	return &commitBatcher{rdb: rdb, script: script, sha: script.Hash()}
}

// head appends to dst the start of a command that runs the script with
// keys: the caller appends ARGV, and passes the whole to run. A command
// built whole is sent as it is, where go-redis's Script would copy KEYS
// and ARGV into a slice of its own (a few KiB per one-task job).
func (b *commitBatcher) head(dst []any, keys []string) []any {
	dst = append(dst, "evalsha", b.sha, len(keys))
	for _, k := range keys {
		dst = append(dst, k)
	}
	return dst
}

// run runs cmd (see head), alone or in a batch, and returns its reply.
// Once sent, a commit is waited for even when ctx ends (the store's client
// bounds the wait with its read timeout), since it may have been carried
// out; one whose ctx ended before it went out fails unsent. cmd is not
// used once run returns.
func (b *commitBatcher) run(ctx context.Context, cmd []any) ([]string, error) {
	c := &commitCall{ctx: ctx, cmd: cmd}
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
		c.res, c.err = b.process(ctx, b.rdb, c.cmd).StringSlice()
		if isNoScript(c.err) {
			c.res, c.err = b.eval(ctx, c.cmd).StringSlice()
		}
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
		cmds[i] = b.process(ctx, pipe, c.cmd)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, c := range calls {
		c.res, c.err = cmds[i].StringSlice()
		if isNoScript(c.err) {
			// Not run: EVALSHA ran nothing, so running it again is safe.
			c.res, c.err = b.eval(ctx, c.cmd).StringSlice()
		}
	}
}

// process sends cmd (see head) through c, as go-redis's EvalSha would:
// with its first key's position, which a Redis Cluster routes it by.
func (b *commitBatcher) process(ctx context.Context, c processor, cmd []any) *goredis.Cmd {
	rc := goredis.NewCmd(ctx, cmd...)
	if cmd[2] != 0 {
		rc.SetFirstKeyPos(3)
	}
	_ = c.Process(ctx, rc) // the error is rc's
	return rc
}

// processor is a client or a pipeline.
type processor interface {
	Process(ctx context.Context, cmd goredis.Cmder) error
}

// eval runs cmd (see head) as EVAL with the script's text, for a server
// that does not know the script yet (it loads it), as Script.Run does.
func (b *commitBatcher) eval(ctx context.Context, cmd []any) *goredis.Cmd {
	n := cmd[2].(int)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = cmd[3+i].(string)
	}
	return b.script.Eval(ctx, b.rdb, keys, cmd[3+n:]...)
}

// isNoScript reports a script the server does not know: EVALSHA ran
// nothing.
func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}
