package store

import (
	"testing"

	"github.com/google/uuid"
)

func TestTreeIDs(t *testing.T) {
	root := "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	for range 50 {
		id := NewTreeID(root)
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("NewTreeID = %q: not a random UUID (%v)", id, err)
		}
		if TreeKey(id) != "3f" || TreeKey("task-"+id) != "3f" {
			t.Fatalf("NewTreeID(%s) = %s: another tree", root, id)
		}
		grand := NewTreeID("task-" + id)
		if TreeKey(grand) != "3f" {
			t.Fatalf("id made from a task id %s left the tree: %s", id, grand)
		}
	}
	// An id whose tree key is no byte in hex gives a UUID whose first byte
	// is the tree key's NameByte, the same for every id of that tree.
	for _, rel := range []string{"job-1", "jo", "task-job-2", "x"} {
		id := NewTreeID(rel)
		b, ok := TreeByte(id)
		if uuid.Validate(id) != nil || !ok || b != NameByte(TreeKey(rel)) {
			t.Fatalf("NewTreeID(%s) = %q", rel, id)
		}
	}
	if TreeKey("j") != "j" || TreeKey("") != "" {
		t.Fatal("short ids are their own tree key")
	}
	v5 := uuid.NewSHA1(uuid.New(), []byte("0"))
	if got := SameTree(v5, root); got.Version() != 5 || got[0] != 0x3f {
		t.Fatalf("SameTree = %s", got)
	}
}

func TestEventPositions(t *testing.T) {
	a := JoinEventPosition(0, []string{"5-0", "0-0", "3-1"})
	b := JoinEventPosition(2, []string{"5-0", "0-0", "4-0"})
	c := JoinEventPosition(1, []string{"4-0", "9-0", "4-0"})
	for _, tc := range []struct {
		x, y string
		want int
	}{
		{a, a, 0}, {a, b, -1}, {b, a, 1},
		{b, c, -1}, {c, b, -1}, // neither has seen all the other has
		{"", a, -1}, {a, "", 1}, {"5-0", a, 1}, {"4-0", a, -1}, {"9-0", c, 1},
		{"1-0", "2-0", -1}, // plain ids as before
	} {
		if got := CompareEventIDs(tc.x, tc.y); got != tc.want {
			t.Errorf("CompareEventIDs(%q, %q) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
	if got, want := MinEventID(b, c), JoinEventPosition(-1, []string{"4-0", "0-0", "4-0"}); got != want {
		t.Errorf("MinEventID = %q, want %q", got, want)
	}
	if got, want := MinEventID("4-5", c), JoinEventPosition(-1, []string{"4-0", "4-5", "4-0"}); got != want {
		t.Errorf("MinEventID with a plain id = %q, want %q", got, want)
	}
	if MinEventID("1-0", "2-0") != "1-0" {
		t.Error("MinEventID of plain ids")
	}
	owner, ids, ok := SplitEventPosition(b, 3)
	if !ok || owner != 2 || ids[2] != "4-0" {
		t.Errorf("SplitEventPosition = %d %v %v", owner, ids, ok)
	}
	if _, _, ok := SplitEventPosition(b, 4); ok {
		t.Error("a position of 3 shards accepted for 4")
	}
}

func TestTreeIDFor(t *testing.T) {
	for _, name := range []string{"", "idem:acme:order-1", "idem:acme:order-2", "ctr:x"} {
		id := NewTreeIDFor(name)
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("NewTreeIDFor(%q) = %q: not a random UUID (%v)", name, id, err)
		}
		if b, ok := TreeByte(id); !ok || b != NameByte(name) {
			t.Fatalf("NewTreeIDFor(%q) = %s: tree byte %x, want %x", name, id, b, NameByte(name))
		}
	}
	if NameByte("idem:acme:order-1") == NameByte("idem:acme:order-2") && NameByte("a") == NameByte("b") {
		t.Fatal("NameByte does not depend on the name")
	}
}
