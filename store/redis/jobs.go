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
	j, err := decodeJob(res[:2])
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if len(res) < 7 {
		return nil, fmt.Errorf("read job %s: unexpected reply of %d items", id, len(res))
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

// decodeJob reads the fields doc and v of a job hash.
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
	if v, ok := vals[1].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode version %q: %w", v, err)
		}
		j.Version = n
	}
	return &j, nil
}

// commitPlan is the JSON argument of commitScript. Numbers that must stay
// exact are strings; k fields index KEYS, d fields index ARGV.
type commitPlan struct {
	Jobs    []planJob     `json:"jobs"`
	Prefix  string        `json:"pfx"`             // the deployment's key prefix
	Moves   []string      `json:"moves,omitempty"` // task ids to take out of wherever they are
	Enqueue []planEnqueue `json:"enqueue,omitempty"`
	Cancel  []string      `json:"cancel,omitempty"`
	Timers  []planTimer   `json:"timers,omitempty"`
	Ready   []string      `json:"ready,omitempty"`
	Done    string        `json:"done,omitempty"`   // job whose lease ends
	Events  []int         `json:"events,omitempty"` // ARGV indexes of outbox events
	Once    *planOnce     `json:"once,omitempty"`
	Reward  *planReward   `json:"rep,omitempty"`
	Signal  *planSignal   `json:"sig,omitempty"`
	Claim   *planClaim    `json:"claim,omitempty"`
	// QueueShard prefixes the queue messages of a sharded deployment:
	// "<shard index>|" (see claimHints.notify).
	QueueShard string `json:"qk,omitempty"`
}

// planClaim is Effects.Claim: the task must be among the first n of
// queue q and moves to the worker's running set, as claimNextScript moves
// it.
type planClaim struct {
	Within int    `json:"n"`
	Queue  string `json:"q"`
	TaskID string `json:"id"`
	Worker string `json:"w"`
}

// planSignal names the shard's signal channel and its index, SPUBLISHed by
// a sharded commit that appends events or adds timers (see shardWatch).
type planSignal struct {
	Channel string `json:"c"`
	Shard   string `json:"k"`
}

// planReward is Effects.Reward, applied by adjust_reputation after the
// other writes; the script returns the new reputation. The figures are
// formatted as AdjustReputation sends them.
type planReward struct {
	Key     int    `json:"k"` // workers:reputation
	Worker  string `json:"w"`
	Delta   string `json:"d"`
	Initial string `json:"i"`
	Floor   string `json:"f"`
	Ceiling string `json:"c"`
}

// planOnce is Effects.Once: a value key set only if absent.
type planOnce struct {
	Key   int    `json:"k"`
	Value string `json:"v"`
	TTL   string `json:"t,omitempty"` // ms
}

type planJob struct {
	Parts      planParts `json:"p"`
	ID         string    `json:"id"`
	Key        int       `json:"k"`
	Expect     string    `json:"x"`            // stored version required; "" means the job must not exist
	Version    string    `json:"v"`            // version written
	Doc        int       `json:"d"`            // the JSON document
	Retention  string    `json:"t,omitempty"`  // ms; set for a terminal job
	Member     string    `json:"m,omitempty"`  // index member (creates)
	ClientName string    `json:"cn,omitempty"` // client name (creates): its index
}

// planParts are the writes of a job's part records (store.PartChanges),
// whose keys the script makes from the job's key and the part's name
// (partNames).
type planParts struct {
	Expire         []string   `json:"pe,omitempty"` // parts holding records after the write (a terminal job's, to expire)
	PutTasks       []planPut  `json:"tp,omitempty"`
	DeleteTasks    []string   `json:"td,omitempty"`
	PutBranches    []planPut  `json:"bp,omitempty"`
	DeleteBranches []string   `json:"bd,omitempty"`
	PutDone        []planDone `json:"dp,omitempty"`
	AddDispatches  []int      `json:"xp,omitempty"` // ARGV indexes
}

type planPut struct {
	ID  string `json:"i"`
	Doc int    `json:"d"` // ARGV index
}

type planDone struct {
	ID     string `json:"i"`
	Status string `json:"s"`
}

type planEnqueue struct {
	ID     string `json:"id"`
	Score  string `json:"s"`
	Doc    int    `json:"d"`
	Queue  string `json:"q"`
	Worker string `json:"w,omitempty"`
}

type planTimer struct {
	Key   string `json:"key"`
	Score string `json:"s"`
	Doc   int    `json:"d,omitempty"` // ARGV index; 0: none (see timerDoc)
}

// partNames are the suffixes of a job's part record keys, as commitScript
// makes them: tasks, branches, done, dispatches (keys.jobTasks, ...).
var partNames = [4]string{"tasks", "branches", "done", "dispatches"}

// commitArgs collects KEYS and ARGV of one commit.
type commitArgs struct {
	keys  []string
	index map[string]int
	argv  []any
}

func (a *commitArgs) key(k string) int {
	if i, ok := a.index[k]; ok {
		return i
	}
	a.keys = append(a.keys, k)
	a.index[k] = len(a.keys)
	return len(a.keys)
}

func (a *commitArgs) doc(d string) int {
	a.argv = append(a.argv, d)
	return len(a.argv)
}

// commit writes a job (created when create is set) and its effects in one
// commitScript call. On success the caller bumps job.Version.
func (s *Store) commit(ctx context.Context, job *store.Job, create bool, fx store.Effects) error {
	op := "update job " + job.ID
	if create {
		op = "create job " + job.ID
	}
	if err := checkCreates(job.ID, fx.Create); err != nil {
		return err
	}
	if create && fx.Claim != nil {
		return fmt.Errorf("%s: a create takes no claim", op)
	}
	if err := s.checkTree(job.ID, fx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if r := fx.Reward; r != nil {
		if err := r.Check(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if s.sharded() {
			// workers:reputation is deployment-wide, in another slot than
			// any shard: the caller adjusts it (Reward.Applied stays false).
			fx.Reward = nil
		}
	}
	once := fx.Once
	if once != nil && s.sharded() && nameIndex(once.Key, len(s.shards)) != shardIndex(job.ID, len(s.shards)) {
		// The once-key is a value, in the shard its name hashes to; a job
		// whose id was not made for it (store.NewTreeIDFor) lives in
		// another: take the key first, and give it back if the write does
		// not happen.
		fx.Once = nil
		if err := s.takeOnce(ctx, once); err != nil {
			return err
		}
	}
	keys, argv, err := s.buildCommit(job, create, fx)
	if err != nil {
		s.giveOnceBack(once, fx.Once)
		return fmt.Errorf("%s: %w", op, err)
	}
	echoes := s.queueMessages(job.ID, fx.Enqueue)
	s.hints.expect(echoes)
	var learn func(left string)
	if c := fx.Claim; c != nil {
		learn = s.claimHint(job.ID, c.Queue)
	}
	res, err := commitScript.Run(ctx, s.rdb, keys, argv...).StringSlice()
	if err != nil {
		s.missedEchoes(echoes)
		return fail(ctx, op, err) // the write may have happened: keep the key
	}
	if res[0] != "ok" {
		s.missedEchoes(echoes)
		s.giveOnceBack(once, fx.Once)
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
		for _, q := range fx.Enqueue {
			if q.Worker != "" {
				s.figures.queued(q.Worker, 1)
			}
		}
		job.Written()
		for _, c := range fx.Create {
			c.Version = 1
			c.Written()
		}
		if learn != nil {
			learn(res[len(res)-1])
			res = res[:len(res)-1]
		}
		if r := fx.Reward; r != nil {
			if err := rewarded(r, res[1:]); err != nil {
				return err
			}
			s.figures.reputation(r.Worker, r.Value)
		}
		return nil
	case "nothead":
		return fmt.Errorf("claim task %s from queue %s: %w", fx.Claim.TaskID, fx.Claim.Queue, store.ErrNotHead)
	case "once":
		return fmt.Errorf("%s: %w", once.Key, store.ErrOnceTaken)
	case "exists":
		return fmt.Errorf("job %s: %w", res[1], store.ErrExists)
	case "notfound":
		return fmt.Errorf("job %s: %w", res[1], store.ErrNotFound)
	case "conflict":
		return fmt.Errorf("job %s at version %d, stored %s: %w", job.ID, job.Version, res[1], store.ErrConflict)
	}
	return fmt.Errorf("%s: unexpected script reply %q", op, res)
}

// claimHint prepares what a commit that claims a task (Effects.Claim) from
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

// rewarded records in r the reputation a commit that applied it returned.
// The write is done: an unreadable reply is an error, r is left unapplied.
func rewarded(r *store.Reward, reply []string) error {
	if len(reply) != 2 {
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
	return nil
}

// takeOnce sets a write's once-key unless it is taken (ErrOnceTaken).
func (s *Store) takeOnce(ctx context.Context, o *store.Once) error {
	ok, err := s.rdb.SetNX(ctx, s.spread(o.Key).value(o.Key), o.Value, max(o.TTL, 0)).Result()
	if err != nil {
		return fail(ctx, "set once "+o.Key, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", o.Key, store.ErrOnceTaken)
	}
	return nil
}

// giveOnceBack deletes a once-key takeOnce set for a write that was
// refused, unless the key was part of the write itself (inScript) or was
// set by another write since.
func (s *Store) giveOnceBack(o, inScript *store.Once) {
	if o == nil || inScript != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	_ = releaseOnceScript.Run(ctx, s.rdb, []string{s.spread(o.Key).value(o.Key)}, o.Value).Err()
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

func (s *Store) buildCommit(job *store.Job, create bool, fx store.Effects) ([]string, []any, error) {
	k := s.shard(job.ID)
	a := &commitArgs{index: map[string]int{}}
	a.argv = []any{"", s.g.readyChannel(), s.g.queueChannel()}
	p := commitPlan{Prefix: k.base}

	expect, version := "", int64(1)
	if !create {
		expect, version = strconv.FormatInt(job.Version, 10), job.Version+1
	}
	pj, err := s.planJob(a, k, job, expect, version)
	if err != nil {
		return nil, nil, err
	}
	p.Jobs = append(p.Jobs, pj)
	for _, c := range fx.Create {
		pj, err := s.planJob(a, k, c, "", 1)
		if err != nil {
			return nil, nil, err
		}
		p.Jobs = append(p.Jobs, pj)
	}

	// The tasks to take out of wherever they are: the removed ones, then
	// the enqueued ones (re-enqueueing moves a task), except those of jobs
	// this commit creates, which are nowhere yet.
	enqueue := lastEnqueues(fx.Enqueue)
	seen := map[string]bool{}
	for _, id := range fx.Remove {
		if !seen[id] {
			seen[id] = true
			p.Moves = append(p.Moves, id)
		}
	}
	created := func(id string) bool {
		return (create && id == job.ID) || slices.ContainsFunc(fx.Create, func(c *store.Job) bool { return c.ID == id })
	}
	for _, q := range enqueue {
		if !seen[q.Run.ID] && !created(q.JobID) {
			seen[q.Run.ID] = true
			p.Moves = append(p.Moves, q.Run.ID)
		}
	}
	for _, q := range enqueue {
		doc, err := json.Marshal(q)
		if err != nil {
			return nil, nil, fmt.Errorf("encode task %s: %w", q.Run.ID, err)
		}
		name := q.Queue()
		p.Enqueue = append(p.Enqueue, planEnqueue{
			ID: q.Run.ID, Score: formatFloat(q.Score), Doc: a.doc(string(doc)), Queue: name, Worker: q.Worker,
		})
	}

	p.Cancel = fx.Cancel
	for _, t := range fx.Timers {
		pt := planTimer{Key: t.Key(), Score: timerScore(t.At)}
		doc, err := timerDoc(t)
		if err != nil {
			return nil, nil, err
		}
		if doc != "" {
			pt.Doc = a.doc(doc)
		}
		p.Timers = append(p.Timers, pt)
	}
	p.Ready = fx.Ready
	for _, ev := range fx.Events {
		p.Events = append(p.Events, a.doc(string(ev)))
	}
	if o := fx.Once; o != nil {
		p.Once = &planOnce{Key: a.key(s.spread(o.Key).value(o.Key)), Value: o.Value}
		if o.TTL > 0 {
			p.Once.TTL = strconv.FormatInt(ttlMillis(o.TTL), 10)
		}
	}
	if fx.DoneReady {
		p.Done = job.ID
	}
	if s.sharded() && len(fx.Enqueue) > 0 {
		p.QueueShard = strconv.Itoa(shardIndex(job.ID, len(s.shards))) + "|"
	}
	if s.sharded() && (len(fx.Events) > 0 || len(fx.Timers) > 0) {
		i := shardIndex(job.ID, len(s.shards))
		p.Signal = &planSignal{Channel: s.shards[i].signalChannel(), Shard: strconv.Itoa(i)}
	}
	if c := fx.Claim; c != nil {
		p.Claim = &planClaim{Within: max(c.Within, 1), Queue: c.Queue, TaskID: c.TaskID, Worker: c.Worker}
	}
	if r := fx.Reward; r != nil {
		p.Reward = &planReward{
			Key: a.key(s.g.reputation()), Worker: r.Worker, Delta: formatFloat(r.Delta),
			Initial: formatFloat(r.Initial), Floor: formatFloat(r.Floor), Ceiling: formatFloat(r.Ceiling),
		}
	}

	plan, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode commit: %w", err)
	}
	a.argv[0] = string(plan)
	return a.keys, a.argv, nil
}

// planJob encodes one job write; the document (the header) carries the
// version written.
func (s *Store) planJob(a *commitArgs, k keys, job *store.Job, expect string, version int64) (planJob, error) {
	c := job.Header()
	c.Version = version
	c.Format = store.FormatVersion
	doc, err := json.Marshal(c)
	if err != nil {
		return planJob{}, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	parts, err := encodeParts(a, job)
	if err != nil {
		return planJob{}, err
	}
	pj := planJob{
		ID: job.ID, Key: a.key(k.job(job.ID)), Expect: expect, Version: strconv.FormatInt(version, 10),
		Doc: a.doc(string(doc)), Parts: parts,
	}
	if job.Status.Terminal() {
		pj.Retention = strconv.FormatInt(ttlMillis(s.retention), 10)
		pj.Parts.Expire = expiringParts(job)
	}
	if expect == "" {
		pj.Member = indexMember(job.CreatedAt, job.ID)
		pj.ClientName = job.Client.Name
	}
	return pj, nil
}

// expiringParts are the KEYS indexes of the part records a terminal job
// keeps: those that hold records after the write when the copy was read
// whole (it then holds what the store will), else all four.
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

// encodeParts encodes what a write does to the job's part records.
func encodeParts(a *commitArgs, job *store.Job) (planParts, error) {
	ch := job.Changes()
	p := planParts{DeleteTasks: ch.DeleteTasks, DeleteBranches: ch.DeleteBranches}
	for _, t := range ch.PutTasks {
		doc, err := json.Marshal(t)
		if err != nil {
			return p, fmt.Errorf("encode task %s of job %s: %w", t.ID, job.ID, err)
		}
		p.PutTasks = append(p.PutTasks, planPut{ID: t.ID, Doc: a.doc(string(doc))})
	}
	for _, id := range ch.PutBranches {
		doc, err := json.Marshal(job.BranchResults[id])
		if err != nil {
			return p, fmt.Errorf("encode branch result %s of job %s: %w", id, job.ID, err)
		}
		p.PutBranches = append(p.PutBranches, planPut{ID: id, Doc: a.doc(string(doc))})
	}
	for _, id := range ch.PutDone {
		p.PutDone = append(p.PutDone, planDone{ID: id, Status: job.DoneTasks[id]})
	}
	for _, d := range ch.AddDispatches {
		doc, err := json.Marshal(d)
		if err != nil {
			return p, fmt.Errorf("encode dispatch of job %s: %w", job.ID, err)
		}
		p.AddDispatches = append(p.AddDispatches, a.doc(string(doc)))
	}
	return p, nil
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
		return p.HMGet(ctx, s.shard(id).job(id), "doc", "v")
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
		a := &commitArgs{index: map[string]int{}}
		a.key(k.jobsExpiring())
		a.key(k.jobsAll())
		for _, e := range due {
			var pair []string
			if json.Unmarshal([]byte(e), &pair) != nil || len(pair) != 2 {
				pair = []string{"", ""} // not ours: drop it from jobs:expiring only
			}
			a.argv = append(a.argv, e, pair[1], a.key(k.jobsByClient(pair[0])))
		}
		n, err := purgeIndexScript.Run(ctx, s.rdb, a.keys, a.argv...).Int()
		if err != nil {
			return fail(ctx, "purge job index", err)
		}
		if len(due) < batch || n == 0 {
			return nil
		}
	}
	return nil
}
