package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Tasks are queued by commits (Effects.Enqueue); see commitScript. A queue
// is a sorted set of task ids scored by QueuedTask.Score; Redis orders equal
// scores by member, so ties go by task id, as in the memory store.

// PeekTasks implements store.TaskQueues.
func (s *Store) PeekTasks(ctx context.Context, queue string, limit int) ([]store.QueuedTask, error) {
	if limit <= 0 {
		return nil, nil
	}
	docs, err := peekTasksScript.Run(ctx, s.rdb, []string{s.k.taskQueue(queue), s.k.taskData()}, limit).StringSlice()
	if err != nil {
		return nil, fail(ctx, "peek queue "+queue, err)
	}
	out := make([]store.QueuedTask, 0, len(docs))
	for _, d := range docs {
		var q store.QueuedTask
		if err := json.Unmarshal([]byte(d), &q); err != nil {
			return nil, fmt.Errorf("peek queue %s: decode task: %w", queue, err)
		}
		out = append(out, q)
	}
	return out, nil
}

// ClaimTask implements store.TaskQueues.
func (s *Store) ClaimTask(ctx context.Context, taskID, workerID string) (*store.QueuedTask, error) {
	keys := []string{s.k.taskWhere(), s.k.taskData(), s.k.loads(), s.k.queues(), s.k.running(workerID)}
	doc, err := claimTaskScript.Run(ctx, s.rdb, keys, taskID, s.k.base, workerID, locRunning+workerID).Text()
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

// ClaimNext implements store.TaskQueues.
func (s *Store) ClaimNext(ctx context.Context, queue, workerID string) (*store.QueuedTask, error) {
	keys := []string{
		s.k.taskWhere(), s.k.taskData(), s.k.loads(), s.k.queues(),
		s.k.taskQueue(queue), s.k.running(workerID),
	}
	doc, err := claimNextScript.Run(ctx, s.rdb, keys, queue, workerID, locRunning+workerID).Text()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(ctx, "claim from queue "+queue, err)
	}
	return decodeClaimed(doc, workerID)
}

// ReleaseTask implements store.TaskQueues.
func (s *Store) ReleaseTask(ctx context.Context, workerID, taskID string) error {
	keys := []string{s.k.taskWhere(), s.k.loads(), s.k.running(workerID)}
	err := releaseTaskScript.Run(ctx, s.rdb, keys, taskID, locRunning+workerID, workerID).Err()
	return fail(ctx, "release task "+taskID, err)
}

// RunningTasks implements store.TaskQueues.
func (s *Store) RunningTasks(ctx context.Context, workerID string) ([]store.QueuedTask, error) {
	docs, err := s.rdb.HVals(ctx, s.k.running(workerID)).Result()
	if err != nil {
		return nil, fail(ctx, "running tasks of "+workerID, err)
	}
	out := make([]store.QueuedTask, 0, len(docs))
	for _, d := range docs {
		var q store.QueuedTask
		if err := json.Unmarshal([]byte(d), &q); err != nil {
			return nil, fmt.Errorf("running tasks of %s: decode: %w", workerID, err)
		}
		q.Worker = workerID
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score < out[j].Score
		}
		return out[i].Run.ID < out[j].Run.ID
	})
	return out, nil
}

// QueueLengths implements store.TaskQueues.
func (s *Store) QueueLengths(ctx context.Context) (map[string]int, error) {
	names, err := s.rdb.SMembers(ctx, s.k.queues()).Result()
	if err != nil {
		return nil, fail(ctx, "queue lengths", err)
	}
	cmds, err := pipelined(ctx, s.rdb, names, func(p goredis.Pipeliner, n string) *goredis.IntCmd {
		return p.ZCard(ctx, s.k.taskQueue(n))
	})
	if err != nil {
		return nil, fail(ctx, "queue lengths", err)
	}
	out := make(map[string]int, len(names))
	for i, n := range names {
		if c := cmds[i].Val(); c > 0 {
			out[n] = int(c)
		}
	}
	return out, nil
}

// Loads implements store.TaskQueues.
func (s *Store) Loads(ctx context.Context) (map[string]int, error) {
	all, err := s.rdb.HGetAll(ctx, s.k.loads()).Result()
	if err != nil {
		return nil, fail(ctx, "worker loads", err)
	}
	return parseLoads(all), nil
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
