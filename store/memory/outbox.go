package memory

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// outbox is the memory store's event log. Entries are kept in append
// order; ids follow Redis stream ids (<ms>-<seq>) so that both backends
// hand out cursors of one form.
type outbox struct {
	entries []store.OutboxEntry
	lastMS  uint64
	lastSeq uint64
	last    string        // id of the newest entry ever appended
	wake    chan struct{} // closed and replaced on every append
}

// appendEvents adds events under s.mu.
func (s *Store) appendEvents(now time.Time, events [][]byte) {
	if len(events) == 0 {
		return
	}
	o := &s.outbox
	for _, data := range events {
		ms := uint64(max(now.UnixMilli(), 0))
		if ms <= o.lastMS {
			ms, o.lastSeq = o.lastMS, o.lastSeq+1
		} else {
			o.lastSeq = 0
		}
		o.lastMS = ms
		o.last = strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(o.lastSeq, 10)
		o.entries = append(o.entries, store.OutboxEntry{ID: o.last, Data: slices.Clone(data)})
	}
	if o.wake != nil {
		close(o.wake)
		o.wake = nil
	}
}

// AppendEvents implements store.Outbox.
func (s *Store) AppendEvents(ctx context.Context, _ string, events ...[]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendEvents(time.Now(), events)
	return nil
}

// ReadEvents implements store.Outbox.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int, wait time.Duration) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		o := &s.outbox
		i, _ := slices.BinarySearchFunc(o.entries, after, func(e store.OutboxEntry, id string) int {
			return store.CompareEventIDs(e.ID, id)
		})
		if i < len(o.entries) && o.entries[i].ID == after {
			i++
		}
		if n := min(len(o.entries)-i, limit); n > 0 {
			out := slices.Clone(o.entries[i : i+n])
			s.mu.Unlock()
			return out, nil
		}
		if wait <= 0 {
			s.mu.Unlock()
			return nil, nil
		}
		if o.wake == nil {
			o.wake = make(chan struct{})
		}
		wake := o.wake
		s.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-wake:
		case <-timeout:
			return nil, nil
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// LastEventID implements store.Outbox.
func (s *Store) LastEventID(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outbox.last, nil
}

// TrimEvents implements store.Outbox.
func (s *Store) TrimEvents(ctx context.Context, before string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	i, _ := slices.BinarySearchFunc(o.entries, before, func(e store.OutboxEntry, id string) int {
		return store.CompareEventIDs(e.ID, id)
	})
	if i > 0 {
		// A new slice lets the trimmed entries be collected.
		o.entries = slices.Clone(o.entries[i:])
	}
	return nil
}

// EventCount implements store.Outbox.
func (s *Store) EventCount(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.outbox.entries)), nil
}
