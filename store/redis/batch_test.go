package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// errRefused is the error of a command the gate refused.
var errRefused = errors.New("refused by the test's gate")

// gate holds the single commands (not pipelines) sent through it until
// opened, refuses the first refuse of them unsent, and counts the
// pipelines, with the commands each carried.
type gate struct {
	open      chan struct{}
	mu        sync.Mutex
	refuse    int
	pipelines []int // commands per pipeline
}

func (g *gate) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (g *gate) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if connSetup(cmd) {
			return next(ctx, cmd)
		}
		<-g.open
		g.mu.Lock()
		refuse := g.refuse > 0
		g.refuse--
		g.mu.Unlock()
		if refuse {
			cmd.SetErr(errRefused)
			return errRefused
		}
		return next(ctx, cmd)
	}
}

func (g *gate) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if connSetup(cmds[0]) {
			return next(ctx, cmds)
		}
		g.mu.Lock()
		g.pipelines = append(g.pipelines, len(cmds))
		g.mu.Unlock()
		return next(ctx, cmds)
	}
}

// batcherOn returns a commitBatcher for script on rdb, whose single
// commands (not pipelines) wait at the returned gate from now on.
func batcherOn(t *testing.T, rdb goredis.UniversalClient, script *goredis.Script) (*commitBatcher, *gate) {
	t.Helper()
	t.Cleanup(func() { rdb.Close() })
	g := &gate{open: make(chan struct{})}
	rdb.AddHook(g)
	return newCommitBatcher(rdb, script), g
}

// standalone is a client of the test server.
func standalone(t *testing.T) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(testenv.URL(t, testenv.RedisVar))
	if err != nil {
		t.Fatal(err)
	}
	return goredis.NewClient(o)
}

func (b *commitBatcher) waitingNow() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiting)
}

// TestCommitBatcher: while maxCommitsOut commits are out, later ones wait
// and go out together, each with its own reply or error, in the order they
// came; one whose context ended while it waited is not sent; a script the
// server does not know yet is loaded for a batch as for a commit alone.
func TestCommitBatcher(t *testing.T) {
	t.Parallel()
	key := fmt.Sprintf("avtotest-batch-%d", time.Now().UnixNano())
	testCommitBatcher(t, standalone(t), func(int) string { return key })
}

// TestCommitBatcherCluster: on a Redis Cluster, a batch's commits in slots
// of different masters each run on theirs.
func TestCommitBatcherCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	prefix := fmt.Sprintf("avtotest-batch-%d", time.Now().UnixNano())
	testCommitBatcher(t, goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs}),
		func(i int) string { return fmt.Sprintf("{%s-%d}", prefix, i) })
}

// testCommitBatcher runs the scenario of TestCommitBatcher on rdb, the
// i-th commit appending to keyOf(i).
func testCommitBatcher(t *testing.T, rdb goredis.UniversalClient, keyOf func(i int) string) {
	const waiting, failing, unsent = 12, maxCommitsOut + 3, maxCommitsOut + 5
	// A script no other test loads (its text is new), so that the batch
	// finds it missing: the commits out before it are refused unsent.
	script := goredis.NewScript(fmt.Sprintf(`-- batch test %d
if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end
return {ARGV[1], tostring(redis.call('RPUSH', KEYS[1], ARGV[1]))}`, time.Now().UnixNano()))
	b, g := batcherOn(t, rdb, script)
	g.refuse = maxCommitsOut
	ctx := context.Background()
	t.Cleanup(func() {
		for i := range maxCommitsOut + waiting {
			rdb.Del(context.Background(), keyOf(i))
		}
	})

	type reply struct {
		res []string
		err error
	}
	replies := make([]chan reply, maxCommitsOut+waiting)
	args := make([]string, len(replies))
	start := func(i int, ctx context.Context) {
		replies[i] = make(chan reply, 1)
		go func() {
			res, err := b.run(ctx, append(b.head(nil, []string{keyOf(i)}), args[i]))
			replies[i] <- reply{res, err}
		}()
	}
	// The first commits go out alone and are held at the gate.
	for i := range maxCommitsOut {
		args[i] = "first" + strconv.Itoa(i)
		start(i, ctx)
		testenv.WaitUntil(t, "commit "+strconv.Itoa(i)+" is out", 10*time.Second, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.out == i+1
		})
	}
	// The rest wait: one fails, one's context ends while it waits.
	cancelled, cancel := context.WithCancel(ctx)
	ran := map[string][]string{} // what the waiting ones append to each key, in order
	for i := maxCommitsOut; i < len(replies); i++ {
		c := ctx
		switch args[i] = "w" + strconv.Itoa(i); i {
		case failing:
			args[i] = "fail"
		case unsent:
			c = cancelled
		default:
			ran[keyOf(i)] = append(ran[keyOf(i)], args[i])
		}
		start(i, c)
		testenv.WaitUntil(t, "commit "+strconv.Itoa(i)+" waits", 10*time.Second, func() bool { return b.waitingNow() == i-maxCommitsOut+1 })
	}
	cancel()
	close(g.open)

	for i, ch := range replies {
		r := <-ch
		switch {
		case i < maxCommitsOut:
			if !errors.Is(r.err, errRefused) {
				t.Errorf("commit %d: err = %v, want the gate's refusal", i, r.err)
			}
		case i == failing:
			if !goredis.HasErrorPrefix(r.err, "asked to fail") {
				t.Errorf("commit %d: err = %v, want the script's error", i, r.err)
			}
		case i == unsent:
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("commit %d: err = %v, want context.Canceled", i, r.err)
			}
		case r.err != nil || len(r.res) != 2 || r.res[0] != args[i]:
			t.Errorf("commit %d: %v, %v; want its own reply %q", i, r.res, r.err, args[i])
		}
	}
	for i := range replies {
		key := keyOf(i)
		got, err := rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(ran[key]) {
			t.Fatalf("%s holds %v, want %v", key, got, ran[key])
		}
	}
	// The waiting ones but the unsent went out as one pipeline.
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pipelines) != 1 || g.pipelines[0] != waiting-1 {
		t.Fatalf("pipelines %v, want one of %d commits", g.pipelines, waiting-1)
	}
}

// TestCommitBatcherNoWait: with fewer than maxCommitsOut commits out, a
// commit goes out at once, alone.
func TestCommitBatcherNoWait(t *testing.T) {
	t.Parallel()
	rdb := standalone(t)
	b, g := batcherOn(t, rdb, goredis.NewScript(`return {tostring(redis.call('INCR', KEYS[1]))}`))
	key := fmt.Sprintf("avtotest-batch-%d", time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	close(g.open)
	for i := 1; i <= 3; i++ {
		res, err := b.run(context.Background(), b.head(nil, []string{key}))
		if err != nil || len(res) != 1 || res[0] != strconv.Itoa(i) {
			t.Fatalf("commit %d: %v, %v", i, res, err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pipelines) != 0 {
		t.Fatalf("pipelines %v, want none", g.pipelines)
	}
}
