package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// keys names every key and channel of one deployment. All of them start
// with "{prefix}:", so the whole deployment is one Cluster hash slot (see
// doc.go for the layout and the lifetime of each key).
type keys struct{ base string }

func (k keys) job(id string) string { return k.base + "job:" + id }
func (k keys) jobsAll() string      { return k.base + "jobs:all" }

// The parts of a job (store.Parts), each a record of its own.
func (k keys) jobTasks(id string) string       { return k.base + "job:" + id + ":tasks" }
func (k keys) jobBranches(id string) string    { return k.base + "job:" + id + ":branches" }
func (k keys) jobDone(id string) string        { return k.base + "job:" + id + ":done" }
func (k keys) jobDispatches(id string) string  { return k.base + "job:" + id + ":dispatches" }
func (k keys) jobsByClient(name string) string { return k.base + "jobs:client:" + name }
func (k keys) jobsExpiring() string            { return k.base + "jobs:expiring" }

func (k keys) readyQueue() string  { return k.base + "ready:queue" }
func (k keys) readySeq() string    { return k.base + "ready:seq" }
func (k keys) readyLeases() string { return k.base + "ready:leases" }
func (k keys) readyDirty() string  { return k.base + "ready:dirty" }

func (k keys) taskQueue(name string) string { return k.base + "tq:" + name }
func (k keys) running(worker string) string { return k.base + "running:" + worker }
func (k keys) taskData() string             { return k.base + "tasks:data" }
func (k keys) taskWhere() string            { return k.base + "tasks:where" }
func (k keys) queues() string               { return k.base + "tasks:queues" }
func (k keys) loads() string                { return k.base + "tasks:loads" }

func (k keys) timers() string    { return k.base + "timers" }
func (k keys) timerData() string { return k.base + "timers:data" }

func (k keys) worker(id string) string { return k.base + "worker:" + id }
func (k keys) workerExpiry() string    { return k.base + "workers:expiry" }
func (k keys) reputation() string      { return k.base + "workers:reputation" }

func (k keys) counter(key string) string { return k.base + "ctr:" + key }
func (k keys) value(key string) string   { return k.base + "val:" + key }
func (k keys) lock(name string) string   { return k.base + "lock:" + name }
func (k keys) lockFence() string         { return k.base + "locks:fence" }

func (k keys) outbox() string { return k.base + "outbox" }

// shardCount is the deployment's number of shards (Options.Shards).
func (k keys) shardCount() string { return k.base + "shards" }

// Pub/sub channels (not keys, but prefixed the same way).
func (k keys) readyChannel() string  { return k.base + "ch:ready" }
func (k keys) queueChannel() string  { return k.base + "ch:queues" }
func (k keys) signalChannel() string { return k.base + "ch:signal" } // a shard's (SPUBLISH)

// indexMember is a job's member in the job indexes: a fixed-width rendering
// of CreatedAt that sorts like the time, then ':' and the id, so that
// ZREVRANGEBYLEX lists jobs newest first with ties broken by id, exactly
// like the memory store.
func indexMember(created time.Time, id string) string {
	return sortableNanos(unixNanos(created)) + ":" + id
}

func sortableNanos(n int64) string {
	// Flipping the sign bit maps int64 order onto uint64 order.
	return fmt.Sprintf("%020d", uint64(n)^(1<<63))
}

// unixNanos is t.UnixNano clamped to the int64 range (zero times included).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, minInt64)):
		return minInt64
	case t.After(time.Unix(0, maxInt64)):
		return maxInt64
	}
	return t.UnixNano()
}

const (
	maxInt64 = int64(^uint64(0) >> 1)
	minInt64 = -maxInt64 - 1
)

// idOfMember returns the job id of an index member.
func idOfMember(m string) string {
	if len(m) > 21 {
		return m[21:]
	}
	return ""
}

// A list cursor is "unixnanos:id" of the last job of a page, the format of
// the memory store.
func cursorOf(created time.Time, id string) string {
	return strconv.FormatInt(unixNanos(created), 10) + ":" + id
}

func parseCursor(c string) (member string, err error) {
	n, id, ok := strings.Cut(c, ":")
	nanos, perr := strconv.ParseInt(n, 10, 64)
	if !ok || perr != nil {
		return "", fmt.Errorf("invalid cursor %q", c)
	}
	return sortableNanos(nanos) + ":" + id, nil
}

// locRunning prefixes a running task's location, a value of tasks:where:
// "r:<worker>" ("q:<queue>" for a queued one, which only the scripts write).
// The scripts read them (take_out).
const locRunning = "r:"

// Shards. With Options.Shards = 1 every key is under the deployment's tag
// "{prefix}:". With N > 1 the keys of jobs, and of everything a commit
// touches with them, exist once per shard under the shard's tag (see
// shardTags); deployment-wide keys keep the deployment's tag.

// shardTags returns the key bases of n shards of a deployment:
// "{prefix:s<k>:<j>}:" where j is the smallest number that puts the tag's
// Cluster slot in the middle half of the k-th n-th of the slot space, so
// that the shards spread evenly over masters that split the slots evenly
// (exactly when n is a multiple of their number: the middle of a part is
// never at a master's boundary).
func shardTags(prefix string, n int) []keys {
	if n <= 1 {
		return []keys{{base: "{" + prefix + "}:"}}
	}
	out := make([]keys, n)
	for k := range n {
		lo, hi := (4*k+1)*slotCount/(4*n), (4*k+3)*slotCount/(4*n)
		for j := 0; ; j++ {
			tag := prefix + ":s" + strconv.Itoa(k) + ":" + strconv.Itoa(j)
			if s := int(crc16(tag)) % slotCount; s >= lo && s < hi {
				out[k] = keys{base: "{" + tag + "}:"}
				break
			}
		}
	}
	return out
}

// slotCount is the number of Redis Cluster hash slots.
const slotCount = 16384

// crc16 is the CRC-16/XMODEM checksum (polynomial 0x1021, initial value 0)
// that Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is the Cluster slot of a key: the CRC16 of its hash tag (the
// text between the first '{' and the next '}', when not empty) or of the
// whole key.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % slotCount
}

// shardIndex maps an id to one of n shards by its tree key
// (store.TreeKey): a byte in hex (a UUID's first byte) modulo n, any other
// key its FNV-1a hash modulo n.
func shardIndex(id string, n int) int {
	if n <= 1 {
		return 0
	}
	if b, ok := store.TreeByte(id); ok {
		return int(b) % n
	}
	return nameIndex(store.TreeKey(id), n)
}

// nameIndex maps a name that is not an id (a counter or value key) to one
// of n shards, the shard of the ids store.NewTreeIDFor(name) gives.
func nameIndex(name string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(store.NameByte(name)) % n
}
