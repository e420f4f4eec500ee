package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Defaults of Options.
const (
	DefaultURL           = "redis://127.0.0.1:6379/0"
	DefaultPrefix        = "avto"
	DefaultRetention     = 24 * time.Hour
	DefaultSweepInterval = time.Minute
)

// Options configures a Store.
type Options struct {
	// URL locates the server: redis://[[user]:password@]host[:port][/db]
	// or rediss://... for TLS. Query parameters of go-redis (dial_timeout,
	// pool_size, ...) are honoured; protocol=3 speaks RESP3 rather than
	// RESP2. Empty means DefaultURL. Used by Open only. For a Cluster, name further seed nodes with addr parameters:
	// redis://host1:7000?addr=host2:7001&addr=host3:7002 (go-redis'
	// ParseClusterURL).
	URL string
	// Cluster makes Open connect to a Redis Cluster (a go-redis
	// ClusterClient) instead of one server. Used by Open only.
	Cluster bool
	// TLSConfig, when set, replaces the TLS settings derived from a
	// rediss:// URL (custom CA, client certificates). Used by Open only.
	TLSConfig *tls.Config
	// PoolSize is the connection pool size; 0 keeps the URL's pool_size or
	// go-redis' default (10 per CPU). Used by Open only.
	PoolSize int

	// Prefix names the deployment: every key is "{Prefix}:..." so that
	// several deployments share one Redis, and all keys of a deployment
	// hash to one Cluster slot. It must not contain '{' or '}'. Empty means
	// DefaultPrefix.
	Prefix string
	// Retention is how long a terminal job stays readable. Zero means
	// DefaultRetention.
	Retention time.Duration
	// Shards is the number of shards the live state of jobs is spread
	// over (see doc.go): 1 (the default) keeps every key under one hash
	// tag, one Cluster slot; on a Cluster, use a multiple of the masters
	// (12 for 3). All processes of a deployment must use the same number,
	// and it cannot change while jobs are kept.
	Shards int
	// SweepInterval is how often the store drops index entries of expired
	// jobs. Zero means DefaultSweepInterval.
	SweepInterval time.Duration
}

// Store implements store.Store on Redis. It is safe for concurrent use, and
// any number of Stores (in any number of processes) may share one prefix.
type Store struct {
	rdb       goredis.UniversalClient
	commits   *commitBatcher
	argsPool  sync.Pool // of *commitArgs, see commitArgs.reset
	ownClient bool
	g         keys   // deployment-wide keys and channels
	shards    []keys // per-shard keys; shards[0] == g with one shard
	turn      atomic.Uint32
	hints     claimHints  // where ClaimNext found tasks last, per queue
	watch     *shardWatch // what readers that span shards know of each
	figures   figureCache // the figures WorkerFigures read last
	retention time.Duration
	sweep     time.Duration

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	ps     *goredis.PubSub
	sigs   []*goredis.PubSub // with several shards: one per shard's signal channel
	resync chan struct{}     // the subscription was re-established

	waiters waitList   // NextReady callers of this process
	alarm   leaseAlarm // wakes a waiter when the next ready lease lapses

	wmu      sync.Mutex
	watchers map[*watcher]struct{}
	closed   bool
}

var _ store.Store = (*Store)(nil)

// AppendOnly reports whether the server persists every write (appendonly
// yes): without it, a restart loses the writes since the last snapshot, or
// all of them.
func (s *Store) AppendOnly(ctx context.Context) (bool, error) {
	v, err := s.rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false, fail(ctx, "config get appendonly", err)
	}
	return v["appendonly"] == "yes", nil
}

// Open connects to the Redis at opts.URL and returns a Store that owns the
// connection: Close closes it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	var rdb goredis.UniversalClient
	if opts.Cluster {
		co, err := clusterOptions(opts)
		if err != nil {
			return nil, err
		}
		rdb = goredis.NewClusterClient(co)
	} else {
		ro, err := clientOptions(opts)
		if err != nil {
			return nil, err
		}
		rdb = goredis.NewClient(ro)
	}
	s, err := newStore(ctx, rdb, opts, true)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Store on an existing client (for instance a ClusterClient
// or a FailoverClient). Close leaves the client open. The URL, TLSConfig
// and PoolSize options are ignored.
func New(ctx context.Context, rdb goredis.UniversalClient, opts Options) (*Store, error) {
	return newStore(ctx, rdb, opts, false)
}

// clientOptions turns Options into go-redis client options.
func clientOptions(opts Options) (*goredis.Options, error) {
	ro, err := parseURL(opts, "URL", goredis.ParseURL)
	if err != nil {
		return nil, err
	}
	ro.TLSConfig, ro.PoolSize = connOptions(opts, ro.TLSConfig, ro.PoolSize)
	ro.Protocol = respVersion(ro.Protocol)
	return ro, nil
}

// clusterOptions turns Options into go-redis cluster client options.
func clusterOptions(opts Options) (*goredis.ClusterOptions, error) {
	co, err := parseURL(opts, "cluster URL", goredis.ParseClusterURL)
	if err != nil {
		return nil, err
	}
	co.TLSConfig, co.PoolSize = connOptions(opts, co.TLSConfig, co.PoolSize)
	co.Protocol = respVersion(co.Protocol)
	return co, nil
}

// parseURL parses opts.URL (DefaultURL when empty) with a go-redis parser.
func parseURL[T any](opts Options, what string, parse func(string) (*T, error)) (*T, error) {
	u := opts.URL
	if u == "" {
		u = DefaultURL
	}
	o, err := parse(u)
	if err != nil {
		return nil, fmt.Errorf("redis store: parse %s: %w", what, err)
	}
	return o, nil
}

// connOptions returns the TLS configuration and pool size of a client: those
// of opts where set, over the URL's.
func connOptions(opts Options, tlsConfig *tls.Config, poolSize int) (*tls.Config, int) {
	if opts.TLSConfig != nil {
		tlsConfig = opts.TLSConfig
	}
	if opts.PoolSize > 0 {
		poolSize = opts.PoolSize
	}
	return tlsConfig, poolSize
}

// respVersion is the RESP version to speak: the URL's protocol parameter,
// else 2. The store uses nothing of RESP3, and under it go-redis looks
// for push notifications around every command: RESP2 carried 1.05× the
// one-task jobs per second (BENCHMARKS).
func respVersion(fromURL int) int {
	if fromURL == 0 {
		return 2
	}
	return fromURL
}

func newStore(ctx context.Context, rdb goredis.UniversalClient, opts Options, own bool) (*Store, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redis store: prefix %q must not contain '{' or '}'", prefix)
	}
	if opts.Shards < 0 || opts.Shards > maxShards {
		return nil, fmt.Errorf("redis store: %d shards: want 1 to %d", opts.Shards, maxShards)
	}
	s := &Store{
		rdb:       rdb,
		commits:   newCommitBatcher(rdb, commitScript),
		ownClient: own,
		g:         keys{base: "{" + prefix + "}:"},
		shards:    shardTags(prefix, max(opts.Shards, 1)),
		retention: opts.Retention,
		sweep:     opts.SweepInterval,
		watchers:  map[*watcher]struct{}{},
		resync:    make(chan struct{}, 1),
	}
	s.watch = newShardWatch(len(s.shards))
	s.argsPool.New = func() any { return &commitArgs{ops: make([]any, 0, 64)} }
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.sweep <= 0 {
		s.sweep = DefaultSweepInterval
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fail(ctx, "redis store: ping", err)
	}
	if err := s.checkShards(ctx); err != nil {
		return nil, err
	}
	ps, err := s.subscribe(ctx)
	if err != nil {
		return nil, err
	}
	s.ps = ps
	if s.sharded() {
		if s.sigs, err = s.subscribeShards(ctx); err != nil {
			_ = ps.Close()
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i, sp := range s.sigs {
		s.wg.Add(1)
		go s.listenShard(i, sp.ChannelWithSubscriptions(goredis.WithChannelSize(1024)))
	}
	msgs := ps.ChannelWithSubscriptions(goredis.WithChannelSize(1024))
	s.wg.Add(3)
	go s.listen(msgs)
	go s.resyncLoop()
	go s.sweepLoop()
	return s, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	return fail(ctx, "redis store: ping", s.rdb.Ping(ctx).Err())
}

// Close stops the store's goroutines, ends its watchers and waiters, and
// closes the client if Open created it.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.wmu.Lock()
		s.closed = true
		s.wmu.Unlock()
		s.cancel()
		s.alarm.stop()
		err = s.ps.Close()
		for _, sp := range s.sigs {
			err = errors.Join(err, sp.Close())
		}
		s.wg.Wait()
		if s.ownClient {
			err = errors.Join(err, s.rdb.Close())
		}
	})
	return err
}

// checkShards records the deployment's number of shards on first use and
// refuses a Store with another number: its jobs would not be found.
func (s *Store) checkShards(ctx context.Context) error {
	n := len(s.shards)
	for {
		got, err := s.rdb.Get(ctx, s.g.shardCount()).Int()
		if err == nil {
			if got != n {
				return fmt.Errorf("redis store: deployment %s has %d shards, not %d (Options.Shards must not change while jobs are kept)", s.g.base, got, n)
			}
			return nil
		}
		if !errors.Is(err, goredis.Nil) {
			return fail(ctx, "redis store: read shard count", err)
		}
		if n > 1 {
			// A deployment from before the count was kept has one shard.
			old, err := s.rdb.Exists(ctx, s.g.jobsAll(), s.g.readySeq()).Result()
			if err != nil {
				return fail(ctx, "redis store: read shard count", err)
			}
			if old > 0 {
				return fmt.Errorf("redis store: deployment %s keeps its jobs in one shard, not %d (Options.Shards must not change while jobs are kept)", s.g.base, n)
			}
		}
		if err := s.rdb.SetNX(ctx, s.g.shardCount(), n, 0).Err(); err != nil {
			return fail(ctx, "redis store: record shard count", err)
		}
	}
}

// maxShards bounds Options.Shards: a tree key of one byte spreads over at
// most 256.
const maxShards = 256

// shard returns the keys of the shard that holds a job (or task) id.
func (s *Store) shard(id string) keys { return s.shards[shardIndex(id, len(s.shards))] }

// spread returns the keys of the shard that holds a counter or value: by
// the hash of its name, so that many of them (replay keys, one per result)
// do not all weigh on one slot.
func (s *Store) spread(name string) keys { return s.shards[nameIndex(name, len(s.shards))] }

// sharded reports whether the deployment has several shards.
func (s *Store) sharded() bool { return len(s.shards) > 1 }

// visit returns the shard indexes in the order a reader that spans shards
// visits them: from a rotating start, so that readers that stop at their
// first hit do not all favour one shard.
func (s *Store) visit() []int {
	n := len(s.shards)
	start := int(s.turn.Add(1)) % n
	out := make([]int, n)
	for i := range out {
		out[i] = (start + i) % n
	}
	return out
}

// errClosed is returned by calls that wait on a closed store.
var errClosed = fmt.Errorf("redis store closed: %w", store.ErrUnavailable)

// sweepLoop drops index entries of expired jobs now and then, and, first,
// the timer documents earlier versions left (dropRedundantTimerDocs).
func (s *Store) sweepLoop() {
	defer s.wg.Done()
	_ = s.dropRedundantTimerDocs(s.ctx) // best effort; they cost only memory
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			_ = s.purgeJobIndex(s.ctx) // best effort; ListJobs purges too
		}
	}
}

// pipelined sends one command for each item in one round trip and returns
// the commands in the items' order.
func pipelined[T any, C goredis.Cmder](ctx context.Context, rdb goredis.UniversalClient, items []T, cmd func(goredis.Pipeliner, T) C) ([]C, error) {
	cmds := make([]C, len(items))
	if len(items) == 0 {
		return cmds, nil
	}
	_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, it := range items {
			cmds[i] = cmd(p, it)
		}
		return nil
	})
	return cmds, err
}
