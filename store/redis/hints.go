package redis

import (
	"sync"
	"time"
)

// With several shards a queue is one sorted set per shard. Reading the
// head of every shard on every claim costs a command per shard; instead a
// Store remembers, per queue, the head each shard had when it last looked
// (a full look: every shard's head, one pipeline), and each claim returns
// its shard's next head. A claim then goes to the shard whose remembered
// head comes first, and takes that shard's actual head only if it still
// comes before every other remembered head (claimShardHeadScript);
// otherwise it learns that head and tries again. Claims only remove heads,
// so remembered heads never come after actual ones and claims keep queue
// order. What breaks that, a task queued with an earlier score or in a
// shard that looked empty, is seen at the next full look: after
// hintClaims claims or hintAge, or as soon as every remembered shard is
// spent. So no shard starves.
//
// A look that finds a queue empty in every shard is remembered too, until
// a message of the queue channel names the queue (every enqueue publishes
// one, in its script; this Store's own commits count at once) or
// shardFallback passes: meanwhile ClaimNext and PeekTasks answer that the
// queue is empty without a command. Another process's enqueue is thus
// seen when its message arrives, which is also when WatchQueues reports
// it; a lost message only delays.
const (
	hintClaims = 16
	hintAge    = 250 * time.Millisecond
	// maxHinted bounds the queues remembered; beyond it the hints start
	// over (they are only a guess).
	maxHinted = 4096
)

// head is the first task of a queue in one shard.
type head struct {
	score  float64
	member string
}

func (h head) before(o head) bool {
	return h.score < o.score || (h.score == o.score && h.member < o.member)
}

// claimHints holds the hints of one Store.
type claimHints struct {
	mu    sync.Mutex
	q     map[string]*queueHint
	gens  map[string]uint64 // queue -> messages that named it
	epoch uint64            // bumped when gens starts over
}

// queueVersion identifies the messages seen for a queue.
type queueVersion struct{ epoch, gen uint64 }

// queueHint is what a Store knows of one queue's shards.
type queueHint struct {
	heads  map[int]head // shard -> its head; absent: empty when looked at
	claims int          // claims since the full look
	looked time.Time    // when every shard was last looked at
	empty  bool         // the look found no task, at version ver
	ver    queueVersion
}

// hintState is what next tells ClaimNext to do.
type hintState int

const (
	hintLook  hintState = iota // look at every shard
	hintClaim                  // claim from the shard named
	hintEmpty                  // the queue is empty
)

func (h *claimHints) version(queue string) queueVersion {
	return queueVersion{h.epoch, h.gens[queue]}
}

// snapshot returns the queue's version, taken before a look.
func (h *claimHints) snapshot(queue string) queueVersion {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version(queue)
}

// notify records that queues received tasks.
func (h *claimHints) notify(queues ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gens == nil || len(h.gens) >= maxHinted {
		h.gens = map[string]uint64{}
		h.epoch++
	}
	for _, q := range queues {
		h.gens[q]++
	}
}

// reset forgets every queue's emptiness (messages may have been lost).
func (h *claimHints) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gens = map[string]uint64{}
	h.epoch++
}

// knownEmpty reports whether the queue is known to be empty.
func (h *claimHints) knownEmpty(queue string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.isEmpty(h.q[queue], queue, now)
}

func (h *claimHints) isEmpty(qh *queueHint, queue string, now time.Time) bool {
	return qh != nil && qh.empty && qh.ver == h.version(queue) && now.Sub(qh.looked) < shardFallback
}

// next returns the shard to claim from and the head its task must not
// come after (nil: none), or what to do instead.
func (h *claimHints) next(queue string, now time.Time) (int, *head, hintState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	qh := h.q[queue]
	if h.isEmpty(qh, queue, now) {
		return 0, nil, hintEmpty
	}
	if qh == nil || len(qh.heads) == 0 || qh.claims >= hintClaims || now.Sub(qh.looked) >= hintAge {
		return 0, nil, hintLook
	}
	best, second := -1, -1
	for k, hd := range qh.heads {
		switch {
		case best < 0 || hd.before(qh.heads[best]) || (hd == qh.heads[best] && k < best):
			best, second = k, best
		case second < 0 || hd.before(qh.heads[second]):
			second = k
		}
	}
	if second < 0 {
		return best, nil, hintClaim
	}
	bound := qh.heads[second]
	return best, &bound, hintClaim
}

// learn records shard k's head after a claim or a refused one; nil: the
// shard's part is empty. claimed counts a claim.
func (h *claimHints) learn(queue string, k int, hd *head, claimed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	qh := h.q[queue]
	if qh == nil {
		return
	}
	if claimed {
		qh.claims++
	}
	if hd == nil {
		delete(qh.heads, k)
	} else {
		qh.heads[k] = *hd
	}
}

// looked records a full look, begun at version ver: the head of every
// shard that holds tasks.
func (h *claimHints) looked(queue string, heads map[int]head, ver queueVersion, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.q == nil || len(h.q) >= maxHinted {
		h.q = map[string]*queueHint{}
	}
	h.q[queue] = &queueHint{heads: heads, looked: now, empty: len(heads) == 0, ver: ver}
}
