package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Tasks are queued by commits (Effects.Enqueue); see commitScript. A queue
// is a sorted set of task ids scored by QueuedTask.Score; Redis orders equal
// scores by member, so ties go by task id, as in the memory store.

// PeekTasks implements store.TaskQueues. A queue known to be empty (see
// claimHints) is not read. Of several shards, it reads the queue's head in
// each and merges them in queue order.
func (s *Store) PeekTasks(ctx context.Context, queue string, limit int) ([]store.QueuedTask, error) {
	if limit <= 0 || s.hints.knownEmpty(queue, time.Now()) {
		return nil, nil
	}
	ver := s.hints.snapshot(queue)
	peek := func(p goredis.Scripter, k keys) *goredis.Cmd {
		return peekTasksScript.EvalSha(ctx, p, []string{k.taskQueue(queue), k.taskData()}, limit)
	}
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.Cmd { return peek(p, k) })
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// A server that has not seen the script yet: one at a time, each
		// loading it where it is missing.
		for i, k := range s.shards {
			cmds[i] = peekTasksScript.Run(ctx, s.rdb, []string{k.taskQueue(queue), k.taskData()}, limit)
			if err = cmds[i].Err(); err != nil && !errors.Is(err, goredis.Nil) {
				break
			}
		}
	}
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail(ctx, "peek queue "+queue, err)
	}
	var out []store.QueuedTask
	for _, c := range cmds {
		docs, err := c.StringSlice()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fail(ctx, "peek queue "+queue, err)
		}
		for _, d := range docs {
			var q store.QueuedTask
			if err := json.Unmarshal([]byte(d), &q); err != nil {
				return nil, fmt.Errorf("peek queue %s: decode task: %w", queue, err)
			}
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		s.hints.looked(queue, nil, ver, time.Now())
	}
	if s.sharded() {
		sortTasks(out)
		out = out[:min(limit, len(out))]
	}
	return out, nil
}

// sortTasks puts tasks in queue order: by score, ties by task id.
func sortTasks(ts []store.QueuedTask) {
	sort.Slice(ts, func(i, j int) bool { return store.InQueueOrder(&ts[i], &ts[j]) })
}

// ClaimTask implements store.TaskQueues. A task lives in its job's shard,
// which its id names (store.NewTreeID; commits refuse other task ids).
func (s *Store) ClaimTask(ctx context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	k := s.shard(taskID)
	keys := []string{k.taskWhere(), k.taskData(), k.loads(), k.queues(), k.running(workerID)}
	doc, err := claimTaskScript.Run(ctx, s.rdb, keys, taskID, k.base, workerID, locRunning+workerID).Text()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("queued task %s: %w", taskID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, "claim task "+taskID, err)
	}
	return decodeClaimed(doc, workerID)
}

// decodeClaimed decodes a task a claim script moved to workerID.
func decodeClaimed(doc, workerID string) (*store.QueuedTask, error) {
	var q store.QueuedTask
	if err := json.Unmarshal([]byte(doc), &q); err != nil {
		return nil, fmt.Errorf("claimed task: decode: %w", err)
	}
	q.Worker = workerID
	return &q, nil
}

// ClaimNext implements store.TaskQueues. It sends nothing for a queue it
// knows is empty (see claimHints). Of several shards, it claims from the
// shard whose head comes first as far as the Store knows, and looks at the
// head of every shard, in one pipeline, when it knows too little.
func (s *Store) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	if !s.sharded() {
		if s.hints.knownEmpty(queue, time.Now()) {
			return nil, nil
		}
		ver := s.hints.snapshot(queue)
		k := s.shards[0]
		keys := []string{k.taskWhere(), k.taskData(), k.loads(), k.queues(), k.taskQueue(queue), k.running(workerID)}
		res, err := claimNextScript.Run(ctx, s.rdb, keys, queue, workerID, locRunning+workerID).Slice()
		if errors.Is(err, goredis.Nil) {
			s.hints.looked(queue, nil, ver, time.Now())
			return nil, nil
		}
		if err != nil {
			return nil, fail(ctx, "claim from queue "+queue, err)
		}
		if len(res) != 2 {
			return nil, fmt.Errorf("claim from queue %s: unexpected reply of %d items", queue, len(res))
		}
		doc, _ := res[0].(string)
		if left, ok := res[1].(int64); ok && left == 0 {
			// The claim emptied the queue: the poll woken next (see
			// Engine.NextTask) sends nothing unless a task came since.
			s.hints.looked(queue, nil, ver, time.Now())
		}
		return decodeClaimed(doc, workerID)
	}
	for {
		k, bound, state := s.hints.next(queue, time.Now())
		switch state {
		case hintEmpty:
			return nil, nil
		case hintRead:
			idx, marks := s.hints.unread(queue)
			heads, err := s.heads(ctx, queue, idx)
			if err != nil {
				return nil, err
			}
			s.hints.read(queue, idx, marks, heads)
			continue
		case hintLook:
			ver := s.hints.snapshot(queue)
			heads, err := s.heads(ctx, queue, nil)
			if err != nil {
				return nil, err
			}
			empty := len(heads) == 0 // heads is the hints' own from here on
			s.hints.looked(queue, heads, ver, time.Now())
			if empty {
				return nil, nil
			}
			continue
		}
		mark := s.hints.mark(queue, k)
		doc, next, err := s.claimShardHead(ctx, k, queue, workerID, bound)
		if err != nil {
			return nil, err
		}
		s.hints.learn(queue, k, mark, next, doc != "")
		if doc != "" {
			return decodeClaimed(doc, workerID)
		}
	}
}

// claimShardHead claims the head of a queue's part in shard k if it does
// not come after bound. It returns the task ("" when none was claimed)
// and the part's head after the claim (nil when empty).
func (s *Store) claimShardHead(ctx context.Context, k int, queue, workerID string, bound *head) (string, *head, error) {
	sk := s.shards[k]
	keys := []string{sk.taskWhere(), sk.taskData(), sk.loads(), sk.queues(), sk.taskQueue(queue), sk.running(workerID)}
	bScore, bMember := "", ""
	if bound != nil {
		bScore, bMember = strconv.FormatFloat(bound.score, 'g', -1, 64), bound.member
	}
	res, err := claimShardHeadScript.Run(ctx, s.rdb, keys, queue, workerID, locRunning+workerID, bScore, bMember).Slice()
	if err != nil {
		return "", nil, fail(ctx, "claim from queue "+queue, err)
	}
	if len(res) < 3 {
		return "", nil, nil // empty
	}
	doc, _ := res[0].(string)
	member, ok := res[2].(string)
	if !ok {
		return doc, nil, nil
	}
	str, _ := res[1].(string)
	score, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return "", nil, fmt.Errorf("claim from queue %s: head score %q: %w", queue, str, err)
	}
	return doc, &head{score: score, member: member}, nil
}

// heads returns the head of each shard named (nil: every shard) whose part
// of a queue holds tasks.
func (s *Store) heads(ctx context.Context, queue string, idx []int) (map[int]head, error) {
	if idx == nil {
		idx = make([]int, len(s.shards))
		for i := range idx {
			idx[i] = i
		}
	}
	cmds, err := pipelined(ctx, s.rdb, idx, func(p goredis.Pipeliner, i int) *goredis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, s.shards[i].taskQueue(queue), 0, 0)
	})
	if err != nil {
		return nil, fail(ctx, "claim from queue "+queue, err)
	}
	out := map[int]head{}
	for j, c := range cmds {
		if z := c.Val(); len(z) > 0 {
			m, _ := z[0].Member.(string)
			out[idx[j]] = head{score: z[0].Score, member: m}
		}
	}
	return out, nil
}

// ReleaseTask implements store.TaskQueues. The task is in the shard its id
// names, as for ClaimTask.
func (s *Store) ReleaseTask(ctx context.Context, workerID, taskID string) error {
	k := s.shard(taskID)
	keys := []string{k.taskWhere(), k.loads(), k.running(workerID)}
	if err := releaseTaskScript.Run(ctx, s.rdb, keys, taskID, locRunning+workerID, workerID).Err(); err != nil {
		return fail(ctx, "release task "+taskID, err)
	}
	return nil
}

// RunningTasks implements store.TaskQueues.
func (s *Store) RunningTasks(ctx context.Context, workerID string) ([]store.QueuedTask, error) {
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.StringSliceCmd {
		return p.HVals(ctx, k.running(workerID))
	})
	if err != nil {
		return nil, fail(ctx, "running tasks of "+workerID, err)
	}
	var out []store.QueuedTask
	for _, c := range cmds {
		for _, d := range c.Val() {
			var q store.QueuedTask
			if err := json.Unmarshal([]byte(d), &q); err != nil {
				return nil, fmt.Errorf("running tasks of %s: decode: %w", workerID, err)
			}
			q.Worker = workerID
			out = append(out, q)
		}
	}
	sortTasks(out)
	return out, nil
}

// QueueLengths implements store.TaskQueues.
func (s *Store) QueueLengths(ctx context.Context) (map[string]int, error) {
	names, err := s.queueNames(ctx)
	if err != nil {
		return nil, fail(ctx, "queue lengths", err)
	}
	type part struct {
		name string
		k    keys
	}
	var parts []part
	for _, n := range names {
		for _, k := range s.shards {
			parts = append(parts, part{n, k})
		}
	}
	cmds, err := pipelined(ctx, s.rdb, parts, func(p goredis.Pipeliner, x part) *goredis.IntCmd {
		return p.ZCard(ctx, x.k.taskQueue(x.name))
	})
	if err != nil {
		return nil, fail(ctx, "queue lengths", err)
	}
	out := make(map[string]int, len(names))
	for i, x := range parts {
		if c := cmds[i].Val(); c > 0 {
			out[x.name] += int(c)
		}
	}
	return out, nil
}

// Loads implements store.TaskQueues.
func (s *Store) Loads(ctx context.Context) (map[string]int, error) {
	out, err := s.loads(ctx)
	if err != nil {
		return nil, fail(ctx, "worker loads", err)
	}
	return out, nil
}

// parseLoads reads tasks:loads, leaving out what is not a positive count.
func parseLoads(all map[string]string) map[string]int {
	out := make(map[string]int, len(all))
	for w, v := range all {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			out[w] = n
		}
	}
	return out
}
