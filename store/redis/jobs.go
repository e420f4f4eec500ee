package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/store"
)

// CreateJob implements store.Jobs.
func (s *Store) CreateJob(ctx context.Context, job *store.Job, fx store.Effects) error {
	if err := s.commit(ctx, job, true, fx); err != nil {
		return err
	}
	job.Version = 1
	return nil
}

// UpdateJob implements store.Jobs.
func (s *Store) UpdateJob(ctx context.Context, job *store.Job, fx store.Effects) error {
	if err := s.commit(ctx, job, false, fx); err != nil {
		return err
	}
	job.Version++
	return nil
}

// GetJob implements store.Jobs: the header and every part, in one script.
func (s *Store) GetJob(ctx context.Context, id string) (*store.Job, error) {
	return s.readJob(ctx, id, -1, nil)
}

// LoadJob implements store.Jobs: the header, the tasks named and their
// final statuses, in one script; a small job (store.SmallJob) whole.
func (s *Store) LoadJob(ctx context.Context, id string, taskIDs ...string) (*store.Job, error) {
	return s.readJob(ctx, id, store.SmallJob, taskIDs)
}

// readJob runs readJobScript: the whole job when it has at most whole part
// records (-1: always), else the header, the tasks named and their final
// statuses.
func (s *Store) readJob(ctx context.Context, id string, whole int, taskIDs []string) (*store.Job, error) {
	k := s.shard(id)
	keys := []string{k.job(id), k.jobTasks(id), k.jobBranches(id), k.jobDone(id), k.jobDispatches(id)}
	argv := make([]any, 0, 1+len(taskIDs))
	argv = append(argv, whole)
	for _, t := range taskIDs {
		argv = append(argv, t)
	}
	res, err := readJobScript.Run(ctx, s.rdb, keys, argv...).Slice()
	if err != nil {
		return nil, fail(ctx, "read job "+id, err)
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	if len(res) < 8 {
		return nil, fmt.Errorf("read job %s: unexpected reply of %d items", id, len(res))
	}
	j, err := decodeJob([]any{res[0], res[1], res[7]})
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if asInt(res[2]) == 1 {
		return s.assemble(id, j, res[3:])
	}
	if j.HasInlineParts() {
		// Written before parts were records: read it whole, so that its
		// next write moves every part to records.
		return s.GetJob(ctx, id)
	}
	tasks, done := pairsOf(res[3]), pairsOf(res[5])
	for _, tid := range taskIDs {
		if doc, ok := tasks[tid]; ok {
			var run store.TaskRun
			if err := json.Unmarshal([]byte(doc), &run); err != nil {
				return nil, fmt.Errorf("job %s: task %s: %w", id, tid, err)
			}
			if j.Tasks == nil {
				j.Tasks = map[string]*store.TaskRun{}
			}
			j.Tasks[tid] = &run
			j.Loaded.Tasks = append(j.Loaded.Tasks, tid)
		}
		if st, ok := done[tid]; ok {
			if j.DoneTasks == nil {
				j.DoneTasks = map[string]string{}
			}
			j.DoneTasks[tid] = st
			j.Loaded.Done = append(j.Loaded.Done, tid)
		}
	}
	return j, nil
}

// assemble builds a whole job from its header and the script's four parts
// (tasks, branches, done as field-value lists; dispatches as a list).
func (s *Store) assemble(id string, h *store.Job, parts []any) (*store.Job, error) {
	tasks, err := decodeRecords[*store.TaskRun](pairsOf(parts[0]))
	if err != nil {
		return nil, fmt.Errorf("job %s: tasks: %w", id, err)
	}
	branches, err := decodeRecords[store.Result](pairsOf(parts[1]))
	if err != nil {
		return nil, fmt.Errorf("job %s: branch results: %w", id, err)
	}
	done := pairsOf(parts[2])
	if len(done) == 0 {
		done = nil
	}
	var dispatches []store.Dispatch
	list, _ := parts[3].([]any)
	for _, d := range list {
		doc, _ := d.(string)
		var x store.Dispatch
		if err := json.Unmarshal([]byte(doc), &x); err != nil {
			return nil, fmt.Errorf("job %s: dispatch: %w", id, err)
		}
		dispatches = append(dispatches, x)
	}
	whole := store.Assemble(h.Header(), tasks, branches, done, dispatches)
	if h.HasInlineParts() {
		store.MergeInline(h, whole)
	}
	return whole, nil
}

// pairsOf reads a flat field-value list (a script's HGETALL, or its
// pairs of HMGET where the value was present).
func pairsOf(v any) map[string]string {
	list, _ := v.([]any)
	out := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		out[k] = val
	}
	return out
}

func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// decodeRecords decodes a hash of JSON records; nil when it is empty.
func decodeRecords[T any](m map[string]string) (map[string]T, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]T, len(m))
	for k, v := range m {
		var x T
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// dataApartFormat is the first format whose jobs keep their initial data
// in the field "in" rather than in the header.
const dataApartFormat = 3

// decodeJob reads the fields doc, v and in of a job hash.
func decodeJob(vals []any) (*store.Job, error) {
	doc, ok := vals[0].(string)
	if !ok {
		return nil, store.ErrNotFound
	}
	var j store.Job
	if err := json.Unmarshal([]byte(doc), &j); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := store.CheckFormat(j.Format); err != nil {
		return nil, err
	}
	if in, ok := vals[2].(string); ok && j.Format >= dataApartFormat {
		if err := json.Unmarshal([]byte(in), &j.InitialData); err != nil {
			return nil, fmt.Errorf("decode initial data: %w", err)
		}
	}
	if j.InitialData == nil {
		j.InitialData = map[string]any{}
	}
	if v, ok := vals[1].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode version %q: %w", v, err)
		}
		j.Version = n
	}
	return &j, nil
}

// commitArgs collects KEYS and ARGV of one commitScript call: the keys the
// ops refer to, the documents, and the ops (see commitScript).
type commitArgs struct {
	keys  []string
	docs  []any // []byte each: go-redis writes them as they are
	ops   []any
	out   []any // the command, see command
	parts []any // the part ops of the writes, laid out after the checks
	// writes are the jobs written, encoded.
	writes []jobWrite
	// arena holds the documents encoded for the commit, end to end: one
	// array kept from commit to commit instead of one allocated for each
	// document (a one-task job's three commits encode six to eight).
	arena []byte
}

// maxArena bounds the arena a pooled commitArgs keeps: a fan-out's create
// encodes megabytes once, not on every commit.
const maxArena = 64 << 10

// reset empties a for its next commit, keeping its arrays: a commit's
// lists are a few hundred bytes to a few KiB, allocated and cleared three
// times per one-task job otherwise. Their contents are cleared so that the
// documents they held can be collected.
func (a *commitArgs) reset() {
	clear(a.docs)
	clear(a.ops)
	clear(a.out)
	clear(a.parts)
	clear(a.writes)
	a.keys, a.docs, a.ops, a.out, a.parts, a.writes = a.keys[:0], a.docs[:0], a.ops[:0], a.out[:0], a.parts[:0], a.writes[:0]
	if cap(a.arena) > maxArena {
		a.arena = nil
	}
	a.arena = a.arena[:0]
}

// commitFixed is how many ARGV come before the documents: the ready and
// queue channels, the shard's prefix and the number of documents.
const commitFixed = 4

// key returns the KEYS index of k, added if new. A commit uses a few
// keys: a scan costs less than a map.
func (a *commitArgs) key(k string) int {
	if i := slices.Index(a.keys, k); i >= 0 {
		return i + 1
	}
	a.keys = append(a.keys, k)
	return len(a.keys)
}

// doc adds a document and returns its ARGV index.
func (a *commitArgs) doc(d []byte) int {
	a.docs = append(a.docs, d)
	return commitFixed + len(a.docs)
}

// encode adds the document enc appends to the arena, and returns its ARGV
// index. A document the arena outgrows keeps the array it was written in.
func (a *commitArgs) encode(enc func(b []byte) ([]byte, error)) (int, error) {
	start := len(a.arena)
	b, err := enc(a.arena)
	if err != nil {
		return 0, err
	}
	a.arena = b
	return a.doc(b[start:len(b):len(b)]), nil
}

// op appends an op: its name and arguments.
func (a *commitArgs) op(name string, args ...any) {
	a.ops = append(append(a.ops, name), args...)
}

// command returns the commit's command for b (see commitBatcher.head):
// KEYS, then ARGV for the shard whose keys start with prefix.
func (a *commitArgs) command(b *commitBatcher, readyChannel, queueChannel, prefix string) []any {
	a.out = append(b.head(a.out, a.keys), readyChannel, queueChannel, prefix, len(a.docs))
	a.out = append(append(a.out, a.docs...), a.ops...)
	return a.out
}

// partNames are the suffixes of a job's part record keys, as commitScript
// makes them: tasks, branches, done, dispatches (keys.jobTasks, ...).
var partNames = [4]string{"tasks", "branches", "done", "dispatches"}

// commitOp names a commit in its errors, built only when one is returned.
type commitOp struct {
	id     string
	create bool
}

func (o commitOp) String() string {
	if o.create {
		return "create job " + o.id
	}
	return "update job " + o.id
}

// commit writes a job (created when create is set) and its effects in one
// commitScript call. On success the caller bumps job.Version.
func (s *Store) commit(ctx context.Context, job *store.Job, create bool, fx store.Effects) error {
	op := commitOp{job.ID, create}
	if err := checkCreates(job.ID, fx.Create); err != nil {
		return err
	}
	if err := store.CheckHand(fx.Hand); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if create && len(fx.Claims) > 0 {
		return fmt.Errorf("%s: a create takes no claim", op)
	}
	if err := s.checkTree(job.ID, fx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, r := range fx.Rewards {
		if err := r.Check(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if s.sharded() {
		// workers:reputation is deployment-wide, in another slot than any
		// shard: the caller adjusts it (Reward.Applied stays false).
		fx.Rewards = nil
	}
	if err := store.CheckOnces(fx.Onces); err != nil {
		return err
	}
	var taken []store.Once // set before the script, given back if refused
	if s.sharded() {
		var err error
		if fx.Onces, taken, err = s.takeForeignOnces(ctx, job.ID, fx.Onces); err != nil {
			return err
		}
	}
	a := s.argsPool.Get().(*commitArgs)
	defer func() { a.reset(); s.argsPool.Put(a) }()
	cmd, err := s.buildCommit(a, job, create, fx)
	if err != nil {
		s.giveOncesBack(taken)
		return fmt.Errorf("%s: %w", op, err)
	}
	echoes := s.queueMessages(job.ID, fx.Enqueue)
	s.hints.expect(echoes)
	var learn func(left string)
	if n := len(fx.Claims); n > 0 {
		// The script says what the last claim left in its queue.
		learn = s.claimHint(job.ID, fx.Claims[n-1].Queue)
	}
	res, err := s.commits.run(ctx, cmd)
	if err != nil {
		s.missedEchoes(echoes)
		return fail(ctx, op.String(), err) // the write may have happened: keep the keys
	}
	if res[0] != "ok" {
		s.missedEchoes(echoes)
		s.giveOncesBack(taken)
	}
	switch res[0] {
	case "ok":
		if s.sharded() && (len(fx.Events) > 0 || len(fx.Timers) > 0) {
			// This Store's readers learn it now, before the caller pokes
			// its timer loop; others when the signal comes.
			s.watch.signal(shardIndex(job.ID, len(s.shards)))
		}
		// The hints and this process's polls learn of the tasks now; the
		// queue messages' echoes will count for nothing (claimHints.echo).
		s.heard(echoes)
		for _, tasks := range [][]store.QueuedTask{fx.Enqueue, fx.Hand} {
			for _, q := range tasks {
				if q.Worker != "" {
					s.figures.queued(q.Worker, 1)
				}
			}
		}
		job.Written()
		job.Format = store.FormatVersion
		for _, c := range fx.Create {
			c.Version = 1
			c.Written()
			c.Format = store.FormatVersion
		}
		if learn != nil {
			learn(res[len(res)-1])
			res = res[:len(res)-1]
		}
		rs := res[1:] // two values for each reward
		for _, r := range fx.Rewards {
			if err := rewarded(r, rs); err != nil {
				return err
			}
			rs = rs[2:]
			s.figures.reputation(r.Worker, r.Value)
		}
		return nil
	case "nothead":
		if c, ok := named(fx.Claims, res); ok {
			return fmt.Errorf("claim task %s from queue %s: %w", c.TaskID, c.Queue, store.ErrNotHead)
		}
		return fmt.Errorf("%s: claim: %w", op, store.ErrNotHead)
	case "once":
		if o, ok := named(fx.Onces, res); ok {
			return fmt.Errorf("%s: %w", o.Key, store.ErrOnceTaken)
		}
		return fmt.Errorf("%s: once-key: %w", op, store.ErrOnceTaken)
	case "exists":
		return fmt.Errorf("job %s: %w", res[1], store.ErrExists)
	case "notfound":
		return fmt.Errorf("job %s: %w", res[1], store.ErrNotFound)
	case "conflict":
		return fmt.Errorf("job %s at version %d, stored %s: %w", job.ID, job.Version, res[1], store.ErrConflict)
	}
	return fmt.Errorf("%s: unexpected script reply %q", op, res)
}

// claimHint prepares what a commit that claims a task (Effects.Claims) from
// a queue tells the claim hints, given the tasks it left in the queue's
// part in the job's shard: as a claim that emptied it would (ClaimNext).
func (s *Store) claimHint(jobID, queue string) func(left string) {
	if !s.sharded() {
		ver := s.hints.snapshot(queue)
		return func(left string) {
			if left == "0" {
				s.hints.looked(queue, nil, ver, time.Now())
			}
		}
	}
	k := shardIndex(jobID, len(s.shards))
	mark := s.hints.mark(queue, k)
	return func(left string) {
		if left == "0" {
			s.hints.learn(queue, k, mark, nil, true)
		}
	}
}

// queueMessages returns the messages a commit of job that queues tasks
// publishes on the queue channel: one per queue, which names the shard
// with several shards (see splitQueueMessage).
func (s *Store) queueMessages(jobID string, tasks []store.QueuedTask) []string {
	if len(tasks) == 0 {
		return nil
	}
	prefix := ""
	if s.sharded() {
		prefix = strconv.Itoa(shardIndex(jobID, len(s.shards))) + "|"
	}
	var out []string
	for _, q := range tasks {
		if m := prefix + q.Queue(); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// missedEchoes counts as messages the queue messages a commit expected to
// hear back but may not have published (see claimHints.missed).
func (s *Store) missedEchoes(msgs []string) {
	s.hints.missed(msgs)
	s.heard(msgs)
}

// heard passes queue messages to the hints, then to the watchers: what
// listen does with a message that is not an own echo.
func (s *Store) heard(msgs []string) {
	for _, m := range msgs {
		name, k := m, -1
		if s.sharded() {
			name, k = splitQueueMessage(m)
		}
		s.hints.notify(name, k)
		s.notifyWatchers(name)
	}
}

// rewarded records in r the reputation a commit that applied it returned,
// the first two values of reply. The write is done: an unreadable reply is
// an error, r is left unapplied.
func rewarded(r *store.Reward, reply []string) error {
	if len(reply) < 2 {
		return fmt.Errorf("reward of %s: unexpected script reply %q", r.Worker, reply)
	}
	v, err := strconv.ParseFloat(reply[0], 64)
	if err != nil {
		return fmt.Errorf("reward of %s: %w", r.Worker, err)
	}
	before, err := strconv.ParseFloat(reply[1], 64)
	if err != nil {
		return fmt.Errorf("reward of %s: %w", r.Worker, err)
	}
	r.Value, r.Before, r.Applied = v, before, true
	return nil
}

// checkTree rejects, with several shards, effects outside the written
// job's shard (see store.TreeKey): a job created or marked ready, or a
// timer added, for a job of another tree.
func (s *Store) checkTree(id string, fx store.Effects) error {
	if !s.sharded() {
		return nil
	}
	home := shardIndex(id, len(s.shards))
	other := func(what, x string) error {
		if shardIndex(x, len(s.shards)) != home {
			return fmt.Errorf("%s %s is not in the tree of job %s (tree keys %q and %q; see store.TreeKey)",
				what, x, id, store.TreeKey(x), store.TreeKey(id))
		}
		return nil
	}
	for _, c := range fx.Create {
		if err := other("child job", c.ID); err != nil {
			return err
		}
	}
	for _, r := range fx.Ready {
		if err := other("ready job", r); err != nil {
			return err
		}
	}
	for _, t := range fx.Timers {
		if err := other("timer of job", t.JobID); err != nil {
			return err
		}
	}
	// ClaimTask and ReleaseTask look for a task only in the shard its id
	// names.
	for _, q := range fx.Enqueue {
		if err := other("task", q.Run.ID); err != nil {
			return err
		}
	}
	for _, r := range fx.Remove {
		if err := other("removed task", r); err != nil {
			return err
		}
	}
	for _, q := range fx.Hand {
		if err := other("handed task", q.Run.ID); err != nil {
			return err
		}
	}
	return nil
}

// takeForeignOnces takes first, with several shards, the once-keys of a
// write of jobID that live in another shard than the job: a once-key is a
// value, in the shard its name hashes to, and a job whose id was not made
// for it (store.NewTreeIDFor) lives in another. It returns the keys the
// script is to set and those it took, to give back if the write does not
// happen.
func (s *Store) takeForeignOnces(ctx context.Context, jobID string, onces []store.Once) (inScript, taken []store.Once, err error) {
	home := shardIndex(jobID, len(s.shards))
	for _, o := range onces {
		if nameIndex(o.Key, len(s.shards)) == home {
			inScript = append(inScript, o)
			continue
		}
		if err := s.takeOnce(ctx, o); err != nil {
			s.giveOncesBack(taken)
			return nil, nil, err
		}
		taken = append(taken, o)
	}
	return inScript, taken, nil
}

// takeOnce sets a write's once-key unless it is taken (ErrOnceTaken).
func (s *Store) takeOnce(ctx context.Context, o store.Once) error {
	ok, err := s.rdb.SetNX(ctx, s.spread(o.Key).value(o.Key), o.Value, max(o.TTL, 0)).Result()
	if err != nil {
		return fail(ctx, "set once "+o.Key, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", o.Key, store.ErrOnceTaken)
	}
	return nil
}

// giveOncesBack deletes the once-keys takeForeignOnces set for a write
// that was refused, unless another write has set them since.
func (s *Store) giveOncesBack(taken []store.Once) {
	if len(taken) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	for _, o := range taken {
		_ = releaseOnceScript.Run(ctx, s.rdb, []string{s.spread(o.Key).value(o.Key)}, o.Value).Err()
	}
}

// named returns the item of list that a refusal ({"nothead", n} or
// {"once", n}) names by its place (1-based), if it names one.
func named[T any](list []T, reply []string) (T, bool) {
	var zero T
	if len(reply) < 2 {
		return zero, false
	}
	i, err := strconv.Atoi(reply[1])
	if err != nil || i < 1 || i > len(list) {
		return zero, false
	}
	return list[i-1], true
}

// checkCreates rejects a commit that creates one job id twice.
func checkCreates(id string, creates []*store.Job) error {
	ids := map[string]bool{id: true}
	for _, c := range creates {
		if ids[c.ID] {
			return fmt.Errorf("job %s: %w", c.ID, store.ErrExists)
		}
		ids[c.ID] = true
	}
	return nil
}

// lastEnqueues keeps, for each task id, its last enqueue: re-enqueueing a
// task moves it, so only the last one of a commit counts.
func lastEnqueues(in []store.QueuedTask) []store.QueuedTask {
	if len(in) < 2 {
		return in
	}
	last := make(map[string]int, len(in))
	for i, q := range in {
		last[q.Run.ID] = i
	}
	out := make([]store.QueuedTask, 0, len(last))
	for i, q := range in {
		if last[q.Run.ID] == i {
			out = append(out, q)
		}
	}
	return out
}

func (s *Store) buildCommit(a *commitArgs, job *store.Job, create bool, fx store.Effects) ([]any, error) {
	k := s.shard(job.ID)

	// The job writes, encoded first: their documents and keys.
	expect, version := "", int64(1)
	if !create {
		expect, version = strconv.FormatInt(job.Version, 10), job.Version+1
	}
	w, err := s.encodeJob(a, k, job, expect, version)
	if err != nil {
		return nil, err
	}
	a.writes = append(a.writes, w)
	for _, c := range fx.Create {
		w, err := s.encodeJob(a, k, c, "", 1)
		if err != nil {
			return nil, err
		}
		a.writes = append(a.writes, w)
	}
	writes := a.writes

	// The checks: every one before any write.
	for _, w := range writes {
		ending := ""
		if w.expect != "" && w.ttl != "" {
			ending = "1"
		}
		a.op("V", w.key, w.job.ID, w.expect, ending)
	}
	for _, c := range fx.Claims {
		a.op("H", max(c.Within, 1), c.Queue, c.TaskID)
	}
	for _, o := range fx.Onces {
		ttl := ""
		if o.TTL > 0 {
			ttl = strconv.FormatInt(ttlMillis(o.TTL), 10)
		}
		a.op("O", a.key(s.spread(o.Key).value(o.Key)), o.Value, ttl)
	}

	// The writes.
	for _, c := range fx.Claims {
		a.op("C", c.Queue, c.TaskID, c.Worker)
	}
	for _, w := range writes {
		w.ops(a)
	}
	// The tasks to take out of wherever they are: the removed ones, then
	// the enqueued ones (re-enqueueing moves a task), except those of jobs
	// this commit creates, which are nowhere yet.
	enqueue := lastEnqueues(fx.Enqueue)
	seen := map[string]bool{}
	for _, id := range fx.Remove {
		if !seen[id] {
			seen[id] = true
			a.op("M", id)
		}
	}
	created := map[string]bool{}
	for _, w := range writes {
		created[w.job.ID] = w.expect == ""
	}
	for _, tasks := range [][]store.QueuedTask{enqueue, fx.Hand} {
		for _, q := range tasks {
			if !seen[q.Run.ID] && !created[q.JobID] {
				seen[q.Run.ID] = true
				a.op("M", q.Run.ID)
			}
		}
	}
	// Encoded by the types themselves: json.Marshal would scan and compact
	// their output once more.
	for _, q := range enqueue {
		doc, err := a.encode(q.AppendJSON)
		if err != nil {
			return nil, fmt.Errorf("encode task %s: %w", q.Run.ID, err)
		}
		a.op("Q", q.Run.ID, formatFloat(q.Score), doc, q.Queue(), q.Worker)
	}
	for _, q := range fx.Hand {
		doc, err := a.encode(q.AppendJSON)
		if err != nil {
			return nil, fmt.Errorf("encode task %s: %w", q.Run.ID, err)
		}
		a.op("P", q.Run.ID, q.Worker, doc)
	}
	for _, key := range fx.Cancel {
		doc := "" // a timer whose key says all of it has no document
		if !keySaysAll(key) {
			doc = "1"
		}
		a.op("X", key, doc)
	}
	for _, t := range fx.Timers {
		doc, err := timerDoc(t)
		if err != nil {
			return nil, err
		}
		var at any = ""
		if doc != "" {
			at = a.doc([]byte(doc))
		}
		a.op("T", t.Key(), timerScore(t.At), at)
	}
	for _, id := range fx.Ready {
		a.op("R", id)
	}
	if fx.DoneReady {
		a.op("D", job.ID)
	}
	for _, ev := range fx.Events {
		a.op("E", a.doc(ev))
	}
	if s.sharded() && len(fx.Enqueue) > 0 {
		a.op("K", strconv.Itoa(shardIndex(job.ID, len(s.shards)))+"|")
	}
	if s.sharded() && (len(fx.Events) > 0 || len(fx.Timers) > 0) {
		i := shardIndex(job.ID, len(s.shards))
		a.op("S", s.shards[i].signalChannel(), strconv.Itoa(i))
	}
	for _, r := range fx.Rewards {
		a.op("W", a.key(s.g.reputation()), r.Worker, formatFloat(r.Delta),
			formatFloat(r.Initial), formatFloat(r.Floor), formatFloat(r.Ceiling))
	}
	return a.command(s.commits, s.g.readyChannel(), s.g.queueChannel(), k.base), nil
}

// jobWrite is one job's write, encoded: its header (the document carries
// the version written) and the changes of its part records.
type jobWrite struct {
	job           *store.Job
	key, doc      int    // KEYS and ARGV indexes
	data          int    // ARGV index of the initial data; 0: stored already
	expect        string // stored version required; "" means the job must not exist
	version       string
	ttl           string // ms; set for a terminal job
	member        string // index member, on creation
	client        string // client name, whose index lists it, on creation
	parts         [2]int // the part ops: a.parts[from:to]
	expiringParts []string
}

// ops appends the write's ops: the header, the parts, the end (index,
// expiry).
func (w jobWrite) ops(a *commitArgs) {
	var data any = "" // written already
	if w.data != 0 {
		data = w.data
	}
	a.op("J", w.key, w.expect, w.version, w.doc, w.ttl, w.member, w.client, data)
	a.ops = append(a.ops, a.parts[w.parts[0]:w.parts[1]]...)
	for _, part := range w.expiringParts {
		a.op("pe", part)
	}
	a.op("F")
}

func (s *Store) encodeJob(a *commitArgs, k keys, job *store.Job, expect string, version int64) (jobWrite, error) {
	c := job.Header()
	c.Version = version
	c.Format = store.FormatVersion
	// The initial data never changes: it goes to the field "in" when the
	// job is created, or first written by this format, and is not encoded
	// or sent again.
	data := c.InitialData
	c.InitialData = nil
	doc, err := a.encode(func(b []byte) ([]byte, error) { return appendHeader(b, c) })
	if err != nil {
		return jobWrite{}, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	w := jobWrite{
		job: job, key: a.key(k.job(job.ID)), doc: doc,
		expect: expect, version: strconv.FormatInt(version, 10),
	}
	if expect == "" || job.Format < dataApartFormat {
		if data == nil {
			data = map[string]any{}
		}
		in, err := json.Marshal(data)
		if err != nil {
			return jobWrite{}, fmt.Errorf("encode initial data of job %s: %w", job.ID, err)
		}
		w.data = a.doc(in)
	}
	from := len(a.parts)
	if err := encodeParts(a, job); err != nil {
		return jobWrite{}, err
	}
	w.parts = [2]int{from, len(a.parts)}
	if job.Status.Terminal() {
		w.ttl = strconv.FormatInt(ttlMillis(s.retention), 10)
		w.expiringParts = expiringParts(job)
	}
	if expect == "" {
		w.member, w.client = indexMember(job.CreatedAt, job.ID), job.Client.Name
	}
	return w, nil
}

// expiringParts are the part records a terminal job keeps: those that
// hold records after the write when the copy was read whole (it then holds
// what the store will), else all four.
func expiringParts(job *store.Job) []string {
	if !job.Loaded.All {
		return partNames[:]
	}
	counts := [len(partNames)]int{len(job.Tasks), len(job.BranchResults), len(job.DoneTasks), len(job.Dispatches)}
	var out []string
	for i, name := range partNames {
		if counts[i] > 0 {
			out = append(out, name)
		}
	}
	return out
}

// encodeParts encodes what a write does to the job's part records, as
// ops (see commitScript) appended to a.parts, their documents added to a.
func encodeParts(a *commitArgs, job *store.Job) error {
	ch := job.Changes()
	for _, t := range ch.PutTasks {
		doc, err := a.encode(t.AppendJSON)
		if err != nil {
			return fmt.Errorf("encode task %s of job %s: %w", t.ID, job.ID, err)
		}
		a.parts = append(a.parts, "hp", "tasks", t.ID, doc)
	}
	for _, id := range ch.DeleteTasks {
		a.parts = append(a.parts, "hd", "tasks", id)
	}
	for _, id := range ch.PutBranches {
		r := job.BranchResults[id]
		doc, err := a.encode(r.AppendJSON)
		if err != nil {
			return fmt.Errorf("encode branch result %s of job %s: %w", id, job.ID, err)
		}
		a.parts = append(a.parts, "hp", "branches", id, doc)
	}
	for _, id := range ch.DeleteBranches {
		a.parts = append(a.parts, "hd", "branches", id)
	}
	for _, id := range ch.PutDone {
		a.parts = append(a.parts, "dp", id, job.DoneTasks[id])
	}
	for _, d := range ch.AddDispatches {
		doc, err := a.encode(d.AppendJSON)
		if err != nil {
			return fmt.Errorf("encode dispatch of job %s: %w", job.ID, err)
		}
		a.parts = append(a.parts, "xp", doc)
	}
	return nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// ListJobs implements store.Jobs. It walks the client's index (or the
// global one) newest first and filters on status and blueprint, reading
// the documents a batch at a time.
func (s *Store) ListJobs(ctx context.Context, f store.JobFilter) ([]*store.Job, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	upper := "+"
	if f.Cursor != "" {
		m, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		upper = "(" + m
	}
	if err := s.purgeJobIndex(ctx); err != nil {
		return nil, "", err
	}
	batch := int64(limit + 1)
	if f.Status != "" || f.Blueprint != "" {
		batch = max(batch, 200)
	}
	var out []*store.Job
	for len(out) <= limit {
		members, err := s.indexPage(ctx, f.Client, upper, batch)
		if err != nil {
			return nil, "", err
		}
		if len(members) == 0 {
			break
		}
		upper = "(" + members[len(members)-1]
		jobs, err := s.readJobs(ctx, members)
		if err != nil {
			return nil, "", err
		}
		for _, j := range jobs {
			if j == nil || (f.Client != "" && j.Client.Name != f.Client) ||
				(f.Status != "" && string(j.Status) != f.Status) || (f.Blueprint != "" && j.Blueprint != f.Blueprint) {
				continue
			}
			out = append(out, j)
			if len(out) > limit {
				break
			}
		}
		if int64(len(members)) < batch {
			break
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursorOf(last.CreatedAt, last.ID)
	}
	return out, next, nil
}

// indexPage returns up to n members of the job index (a client's, or the
// global one) below upper, newest first: with several shards, the newest
// n of the n newest of each shard's index.
func (s *Store) indexPage(ctx context.Context, client, upper string, n int64) ([]string, error) {
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.StringSliceCmd {
		index := k.jobsAll()
		if client != "" {
			index = k.jobsByClient(client)
		}
		return p.ZRevRangeByLex(ctx, index, &goredis.ZRangeBy{Max: upper, Min: "-", Count: n})
	})
	if err != nil {
		return nil, fail(ctx, "list jobs", err)
	}
	if len(cmds) == 1 {
		return cmds[0].Val(), nil
	}
	var members []string
	for _, c := range cmds {
		members = append(members, c.Val()...)
	}
	slices.Sort(members)
	slices.Reverse(members)
	return members[:min(int64(len(members)), n)], nil
}

// readJobs reads the jobs of index members in one round trip; expired
// ones are nil.
func (s *Store) readJobs(ctx context.Context, members []string) ([]*store.Job, error) {
	cmds, err := pipelined(ctx, s.rdb, members, func(p goredis.Pipeliner, m string) *goredis.SliceCmd {
		id := idOfMember(m)
		return p.HMGet(ctx, s.shard(id).job(id), "doc", "v", "in")
	})
	if err != nil {
		return nil, fail(ctx, "list jobs", err)
	}
	out := make([]*store.Job, len(members))
	for i, c := range cmds {
		j, err := decodeJob(c.Val())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list jobs: job %s: %w", idOfMember(members[i]), err)
		}
		out[i] = j
	}
	return out, nil
}

// purgeJobIndex drops the index entries of jobs whose retention ended, a
// bounded batch at a time. Candidates are read with this process's clock;
// the script checks them against the server's.
func (s *Store) purgeJobIndex(ctx context.Context) error {
	// One pipelined look at every shard; only those with due entries
	// (rarely any, on a ListJobs) are purged.
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmds, err := pipelined(ctx, s.rdb, s.shards, func(p goredis.Pipeliner, k keys) *goredis.IntCmd {
		return p.ZCount(ctx, k.jobsExpiring(), "-inf", now)
	})
	if err != nil {
		return fail(ctx, "purge job index", err)
	}
	for i, c := range cmds {
		if c.Val() == 0 {
			continue
		}
		if err := s.purgeShardIndex(ctx, s.shards[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) purgeShardIndex(ctx context.Context, k keys) error {
	const batch = 500
	for range 20 {
		due, err := s.rdb.ZRangeByScore(ctx, k.jobsExpiring(), &goredis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(time.Now().UnixMilli(), 10), Count: batch,
		}).Result()
		if err != nil {
			return fail(ctx, "purge job index", err)
		}
		if len(due) == 0 {
			return nil
		}
		a := &commitArgs{ops: make([]any, 0, 64)}
		a.key(k.jobsExpiring())
		a.key(k.jobsAll())
		var argv []any
		for _, e := range due {
			var pair []string
			if json.Unmarshal([]byte(e), &pair) != nil || len(pair) != 2 {
				pair = []string{"", ""} // not ours: drop it from jobs:expiring only
			}
			argv = append(argv, e, pair[1], a.key(k.jobsByClient(pair[0])))
		}
		n, err := purgeIndexScript.Run(ctx, s.rdb, a.keys, argv...).Int()
		if err != nil {
			return fail(ctx, "purge job index", err)
		}
		if len(due) < batch || n == 0 {
			return nil
		}
	}
	return nil
}
