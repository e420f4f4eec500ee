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
// order. Every enqueue publishes the queue's name with its shard's index
// on the queue channel, in its script (this Store's own commits count at
// once): a shard the hints held empty then gets a head to read, one
// command. What the hints still miss, a task queued with an earlier score
// in a shard that has a head, or a lost message, is seen at the next full
// look: after hintClaims claims or hintAge, or as soon as every remembered
// shard is spent. So no shard starves.
//
// A queue found empty in every shard (by a look, or as claims empty the
// shards; with one shard, by a claim or a peek) is known empty until a
// message names the queue or shardFallback passes: meanwhile ClaimNext and
// PeekTasks answer that the queue is empty without a command. Another process's enqueue is thus seen when
// its message arrives, which is also when WatchQueues reports it; a lost
// message only delays. A read or claim that finds a shard empty does not
// drop it when a message named the shard meanwhile.
const (
	hintClaims = 32
	hintAge    = time.Second
	// maxHinted bounds the queues remembered; beyond it the hints start
	// over (they are only a guess).
	maxHinted = 4096
)

// head is the first task of a queue in one shard.
type head struct {
	score  float64
	member string
	unread bool // a task came (the queue channel said so): head unknown
}

func (h head) before(o head) bool {
	return h.score < o.score || (h.score == o.score && h.member < o.member)
}

// A commit tells the hints of its enqueues when it returns (notify), and
// its queue message comes back to the same Store a moment later: counted
// again, it would end what a claim learned meanwhile (that the queue is
// empty), and a poll would read the queue for nothing. So a commit expects
// its echoes before it runs (expect), and a message that finds an echo
// expected for its very payload (queue and shard) counts for nothing
// (echo). Another process's message with that payload may be taken for
// the echo: the echo still comes and counts in its place, or, if the
// commit failed and none will come, the commit counts as a message itself
// (missed). A resubscription forgets what was expected (reset).

// claimHints holds the hints of one Store.
type claimHints struct {
	mu     sync.Mutex
	q      map[string]*queueHint
	gens   map[string]uint64 // queue -> messages that named it
	epoch  uint64            // bumped when gens starts over
	echoes map[string]int    // queue message -> own echoes expected
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
	// sig counts the messages that named each shard: a read or claim
	// that began before one cannot tell that the shard is empty.
	sig map[int]uint64
}

// hintState is what next tells ClaimNext to do.
type hintState int

const (
	hintLook  hintState = iota // look at every shard
	hintClaim                  // claim from the shard named
	hintEmpty                  // the queue is empty
	hintRead                   // read the heads of the shards unread names
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
// A queue message of a sharded deployment names the shard ("<k>|<queue>"):
// a shard the hints held empty then has a head to read, one command, where
// a full look would take one per shard.
func (h *claimHints) notify(queue string, k int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.version(queue)
	if h.gens == nil || len(h.gens) >= maxHinted {
		h.gens = map[string]uint64{}
		h.epoch++
	}
	h.gens[queue]++
	qh := h.q[queue]
	if qh == nil || k < 0 {
		return
	}
	if qh.ver == prev {
		qh.ver = h.version(queue) // the hint accounts for this message
	}
	if qh.empty {
		qh.empty, qh.heads = false, map[int]head{}
	}
	if _, ok := qh.heads[k]; !ok {
		qh.heads[k] = head{unread: true}
	}
	if qh.sig == nil {
		qh.sig = map[int]uint64{}
	}
	qh.sig[k]++
}

// mark returns the count of messages that named shard k, taken before a
// read or claim there.
func (h *claimHints) mark(queue string, k int) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if qh := h.q[queue]; qh != nil {
		return qh.sig[k]
	}
	return 0
}

// drop forgets shard k's head, found empty by a read or claim that began
// at mark: unless a message named the shard since, then its head is to
// be read again.
func (qh *queueHint) drop(k int, mark uint64) {
	if qh.sig[k] != mark {
		qh.heads[k] = head{unread: true}
		return
	}
	delete(qh.heads, k)
}

// unread returns the shards whose head must be read before a claim, and
// their marks.
func (h *claimHints) unread(queue string) ([]int, []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	var marks []uint64
	if qh := h.q[queue]; qh != nil {
		for k, hd := range qh.heads {
			if hd.unread {
				out = append(out, k)
				marks = append(marks, qh.sig[k])
			}
		}
	}
	return out, marks
}

// read records the heads read of the shards named (absent: empty), read
// after their marks were taken.
func (h *claimHints) read(queue string, shards []int, marks []uint64, heads map[int]head) {
	h.mu.Lock()
	defer h.mu.Unlock()
	qh := h.q[queue]
	if qh == nil || qh.empty {
		return
	}
	for i, k := range shards {
		if hd, ok := heads[k]; ok {
			qh.heads[k] = hd
		} else {
			qh.drop(k, marks[i])
		}
	}
	qh.empty = len(qh.heads) == 0 // as in learn
}

// reset forgets every queue's emptiness (messages may have been lost),
// and the echoes expected.
func (h *claimHints) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gens = map[string]uint64{}
	h.epoch++
	h.echoes = nil
}

// expect records, before a commit runs, the queue messages it will
// publish.
func (h *claimHints) expect(msgs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.echoes == nil {
		h.echoes = map[string]int{}
	}
	for _, m := range msgs {
		if _, ok := h.echoes[m]; ok || len(h.echoes) < maxHinted {
			h.echoes[m]++ // beyond the bound an echo counts as a message
		}
	}
}

// echo reports whether a queue message was expected as an own echo, and
// takes it off what is expected.
func (h *claimHints) echo(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.takeEcho(msg)
}

// missed takes back the echoes a commit expected when it may not have
// published them (it failed, or its answer was lost); the caller then
// counts each as a message (notify), since another process's may have been
// taken for it.
func (h *claimHints) missed(msgs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		h.takeEcho(m)
	}
}

// takeEcho takes one expected echo of msg off what is expected, reporting
// whether there was one. The caller holds mu.
func (h *claimHints) takeEcho(msg string) bool {
	switch n := h.echoes[msg]; n {
	case 0:
		return false
	case 1:
		delete(h.echoes, msg)
	default:
		h.echoes[msg] = n - 1
	}
	return true
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
	for _, hd := range qh.heads {
		if hd.unread {
			return 0, nil, hintRead
		}
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

// learn records shard k's head after a claim or a refused one that began
// at mark; nil: the shard's part is empty. claimed counts a claim.
func (h *claimHints) learn(queue string, k int, mark uint64, hd *head, claimed bool) {
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
		qh.drop(k, mark)
		// Every shard is now known empty, unless a message the hint does
		// not account for came (isEmpty compares the versions).
		qh.empty = len(qh.heads) == 0
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
	if heads == nil {
		heads = map[int]head{} // PeekTasks: found nothing
	}
	qh := &queueHint{heads: heads, looked: now, empty: len(heads) == 0, ver: ver}
	if ver != h.version(queue) {
		// Tasks came during the look, maybe after it read their shard:
		// look again at the next claim.
		qh.empty, qh.claims = false, hintClaims
	}
	h.q[queue] = qh
}
