package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// TestTakeReadyCountsOtherShards: a take that empties its shard still
// reports the jobs queued in the shards it did not visit, so that NextReady
// wakes the next waiter for them (it counted only the job's own shard).
func TestTakeReadyCountsOtherShards(t *testing.T) {
	url := testenv.URL(t, testenv.RedisVar)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := fmt.Sprintf("avtotest-ready-%d", time.Now().UnixNano())
	s, err := Open(ctx, Options{URL: url, Prefix: prefix, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, match := range KeyPatterns(prefix, 4) {
			iter := s.rdb.Scan(ctx, 0, match, 1000).Iterator()
			for iter.Next(ctx) {
				s.rdb.Del(ctx, iter.Val())
			}
		}
		s.Close()
	}()
	// Jobs in shards 0 and 1 (first bytes 00 and 01), taken from every
	// rotating start.
	for range 8 {
		if err := s.PushReady(ctx, "00000000-0000-4000-8000-000000000000", "01000000-0000-4000-8000-000000000000"); err != nil {
			t.Fatal(err)
		}
		first, err := s.takeReady(ctx, time.Minute)
		id, rest := first.id, first.rest
		if err != nil || id == "" || rest != 1 {
			t.Fatalf("take = %q, %d still queued, %v; want one still queued", id, rest, err)
		}
		second, err := s.takeReady(ctx, time.Minute)
		id2, rest := second.id, second.rest
		if err != nil || id2 == "" || id2 == id || rest != 0 {
			t.Fatalf("second take = %q, %d still queued, %v", id2, rest, err)
		}
		for _, j := range []string{id, id2} {
			if err := s.DoneReady(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
	}
}
