package store

import (
	"hash/fnv"
	"strings"

	"github.com/google/uuid"
)

// Job trees. A write's effects stay within the written job's tree: the
// jobs it creates and marks ready, and the timers it adds, belong to the
// tree of the job written (a root job and its child jobs, at any depth),
// and the tasks it removes or re-enqueues were enqueued by that tree. A
// backend may keep a tree together, apart from other trees (store/redis
// with several shards): what places a job is its TreeKey, so child jobs
// and tasks get ids that share their root's (NewTreeID).

// TreeKey is the part of an id that places it: its first two characters
// (all of it when shorter), after a leading "task-" for task ids. For a
// UUID it is the first byte in hex.
func TreeKey(id string) string {
	id = strings.TrimPrefix(id, "task-")
	return id[:min(2, len(id))]
}

// NewTreeID returns a new random UUID (version 4) in the tree of relative
// (a job or task id of the tree), so that the new id lands where relative
// is (see SameTree).
func NewTreeID(relative string) string {
	return SameTree(uuid.New(), relative).String()
}

// NameByte places a name that is not an id (a counter or value key) as
// a tree key would: the low byte of its FNV-1a hash. A job created with a
// value key (an idempotency key, Effects.Onces) gets an id of that tree
// (NewTreeIDFor), so a backend that keeps trees apart can write the key
// and the job in one atomic step.
func NameByte(name string) byte {
	h := fnv.New32a()
	h.Write([]byte(name)) // never fails
	return byte(h.Sum32())
}

// NewTreeIDFor returns a new random UUID (version 4) in the tree of the
// value key name (its first byte is NameByte(name)).
func NewTreeIDFor(name string) string {
	id := uuid.New()
	id[0] = NameByte(name)
	return id.String()
}

// SameTree returns id with its first byte set to relative's tree key when
// that is a byte in hex, otherwise to NameByte of the tree key, which is
// where a backend that keeps trees apart places such an id (a UUID of
// another version stays a valid UUID: only the first byte changes).
func SameTree(id uuid.UUID, relative string) uuid.UUID {
	if b, ok := TreeByte(relative); ok {
		id[0] = b
	} else {
		id[0] = NameByte(TreeKey(relative))
	}
	return id
}

// TreeByte is an id's tree key read as a byte in hex; false when it is not
// one.
func TreeByte(id string) (byte, bool) { return hexByte(TreeKey(id)) }

func hexByte(s string) (byte, bool) {
	if len(s) != 2 {
		return 0, false
	}
	var b byte
	for i := range 2 {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		b = b<<4 | c
	}
	return b, true
}
