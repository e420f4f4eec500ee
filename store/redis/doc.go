// Package redis is the Redis backend of store.Store: the live state of one
// or many orchestrator processes (jobs, the ready queue, task queues,
// timers, the worker registry and counters) kept in Redis, so that any
// process can resume the work of another.
//
// # Configuration
//
//	s, err := redis.Open(ctx, redis.Options{
//		URL:       os.Getenv("REDIS_URL"), // redis://[[user]:password@]host[:port][/db], rediss:// for TLS
//		Prefix:    "avto",                 // one per deployment sharing the server
//		PoolSize:  64,                     // 0: go-redis default (10 per CPU)
//		Retention: 24 * time.Hour,         // how long terminal jobs stay readable
//	})
//
// On a Redis Cluster:
//
//	s, err := redis.Open(ctx, redis.Options{
//		URL:     "redis://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", // seed nodes
//		Cluster: true,
//		Shards:  12, // a multiple of the masters: the live state spreads over them
//	})
//
// New takes an existing go-redis client instead (for instance a
// ClusterClient or a FailoverClient for Sentinel); Close then leaves it
// open. Close stops every goroutine the Store started.
//
// # Keys
//
// With one shard (Options.Shards 1, the default) every key of a deployment
// starts with "{Prefix}:" (written K below). The braces make the prefix a
// Cluster hash tag: all keys of a deployment live in one slot, so the
// scripts below, which touch many of them at once, run on a Redis Cluster
// too, served by one master.
//
// With N shards, K stands for one of N shard tags, "{Prefix:s<k>:<j>}:"
// for shard k (0 to N-1), where j is the smallest number that puts the
// tag's slot in the middle half of the k-th N-th of the slot space: N
// shards fall evenly on masters that split the slots evenly, exactly when N
// is a multiple of their number. Each shard has every key below, except
// the worker registry and locks (workers:*, worker:<id>, lock:*,
// locks:fence), the statistics (stats:*, samples:*), the ch:ready and
// ch:queues channels and "{Prefix}:shards" (the number of shards, kept so
// that a Store with another number is refused), which keep the
// deployment's tag "{Prefix}:". Which shard:
//
//   - a job, its parts and index entries, and everything its writes touch
//     (tasks it enqueues, running-set and load entries of those tasks,
//     its timers, ready entry and outbox events): the shard of the job's
//     id, store.TreeKey(id) read as a byte in hex (a UUID's first byte)
//     modulo N, or for another tree key the low byte of its FNV-1a hash
//     (store.NameByte) modulo N. Child
//     jobs and task ids get a first byte that lands with their root
//     (store.NewTreeID), so a job tree is one shard, and a commit that
//     would create, mark ready or time a job of another tree, or enqueue
//     or remove a task of another tree, is refused;
//   - counters (ctr:) and values (val:): the low byte of their key's
//     FNV-1a hash (store.NameByte) modulo N, so that many of them (a replay
//     key per result) spread.
//
// A worker's running set and load therefore exist in every shard that
// placed a task with it; readers add them up. Times marked "server clock"
// come from Redis' TIME, so that processes with skewed clocks agree on
// leases and TTLs.
//
// Jobs:
//
//	K job:<id>              hash    doc: the job's header as JSON (no parts; its
//	                                initial_data null); in: its initial data as JSON,
//	                                written once (the header held it before format 3);
//	                                v: its version; e: 1 once it ended (its keys expire),
//	                                0 before (absent in records of before); m, c: its
//	                                index member and client name, as created. No TTL
//	                                while the job runs; PEXPIRE Retention once terminal,
//	                                like those of the four part keys below that hold
//	                                records.
//	K job:<id>:tasks        hash    task id -> an outstanding task (store.TaskRun) as JSON.
//	K job:<id>:branches     hash    task id -> an ended branch's result (store.Result) as JSON.
//	K job:<id>:done         hash    task id -> the final status of an ended task.
//	K job:<id>:dispatches   list    every dispatch decision as JSON, oldest first.
//
// Headers and task records carry format_version (store.FormatVersion, 3:
// every field named in snake case, durations in milliseconds, a job's
// initial data in the field in). They encode
// store's own types (a task's spec is a store.TaskSpec, a result a
// store.Result, a job's client a store.Client), never the public blueprint
// types, which the engine converts to and from. Records
// without it were written in format 1 (a task's spec with Go field names
// and nanoseconds), and format 2 kept the initial data in the header:
// both are read, and written back in format 3 (the first write of a job
// read from them writes in). A record
// of a later format is refused (store.ErrFormat, naming both versions), so
// that an older orchestrator never rewrites what a newer one wrote.
//
// The records a commit writes (headers, task and queued-task records,
// branch results, dispatches) are encoded by hand (encode.go, and store's
// TaskRun, QueuedTask, Result and Dispatch's AppendJSON), to the
// bytes json.Marshal writes for their types, which the tests compare them
// with: encoding/json's reflection took 7 % of a one-task job's process
// CPU on them (BENCHMARKS.md, "Records encoded by hand"). They are written
// end to end into one buffer a pooled commit keeps, and the commit's
// EVALSHA is built whole and sent as it is, rather than copied by
// go-redis's Script (BENCHMARKS.md, "Fewer bytes per commit and per
// body").
//
// The initial data never changes: written once, it is not encoded, sent
// or hashed by Lua again on the job's later writes, whatever its size
// (with 4 KB of it, a one-task job costs 0.89x the Redis CPU and 0.91x
// the process CPU it cost when every write carried it; BENCHMARKS.md).
//
// A job's parts (store.Parts) are records of their own, so that a result
// or a pickup reads the header and one task (LoadJob, one readJobScript)
// and writes them back whatever the width of a fan-out; GetJob reads the
// header and every part in the same script, and LoadJob reads a job of at
// most store.SmallJob part records whole. A document written before parts
// were records still holds them inline: it is read whole and its next
// write moves them.
//
//	K jobs:all              zset    index of every job for ListJobs: score 0, member
//	                                "<CreatedAt as 20 sortable digits>:<id>", read with
//	                                ZREVRANGEBYLEX (newest first, ties by id).
//	K jobs:client:<name>    zset    the same index per client.
//	K jobs:expiring         zset    member ["<client>","<index member>"], score: when
//	                                the terminal job expires (ms, server clock). The
//	                                purge (every SweepInterval and on each ListJobs)
//	                                drops due entries and their index entries.
//
// Ready queue (jobs waiting for an executor step):
//
//	K ready:queue           zset    job id, score: a sequence number (FIFO); a job is
//	                                in it at most once. Popped by NextReady.
//	K ready:seq             string  the sequence counter. Never expires.
//	K ready:leases          zset    leased job id, score: lease end (ms, server clock).
//	                                Removed by DoneReady, or by NextReady once lapsed
//	                                (the job is queued again: crash recovery).
//	K ready:dirty           set     leased jobs marked ready during their lease; they
//	                                are queued again when the lease ends.
//
// Task queues:
//
//	K tq:<queue>            zset    task id, score: QueuedTask.Score (lower first,
//	                                ties by task id). <queue> is "worker:<id>" or
//	                                "pending:<type>". Gone when empty.
//	K tasks:data            hash    task id -> the queued task as JSON.
//	K running:<worker>      hash    task id -> the claimed task as JSON, until
//	                                ReleaseTask or Effects.Remove.
//	K tasks:where           hash    task id -> "q:<queue>" or "r:<worker>": where each
//	                                queued or running task is.
//	K tasks:queues          set     names of the non-empty queues (QueueLengths).
//	K tasks:loads           hash    worker -> tasks queued for it + tasks it runs
//	                                (Loads); a field is deleted when it reaches 0.
//
// Timers:
//
//	K timers                zset    timer key (Timer.Key), score: due time (unix µs).
//	K timers:data           hash    timer key -> the timer as JSON, only for a
//	                                timer whose key does not say what it is (a
//	                                "|" in its job id or ref); the due time is
//	                                the score. Both until DeleteTimers or
//	                                Effects.Cancel. Documents that earlier
//	                                versions wrote for every timer are
//	                                dropped as a Store starts.
//
// Workers:
//
//	K worker:<id>           hash    doc: the record as JSON; seen, exp: LastSeen and
//	                                ExpiresAt after the last TouchWorker. PEXPIRE TTL.
//	K workers:expiry        zset    worker id, score: when its record expires (ms,
//	                                server clock). ListWorkers reads it; ExpiredWorkers
//	                                takes due entries off it (so each expired worker is
//	                                reported once); DeleteWorker removes the entry.
//	K workers:reputation    hash    worker id -> reputation. Never expires: it outlives
//	                                the records.
//
// Counters:
//
//	K ctr:<key>             string  a fixed-window counter (rate limits, quotas);
//	                                PEXPIREAT the window end, set when it is created.
//	K val:<key>             string  values of PutValue and once-keys of SetOnce and
//	                                of a commit's Effects.Onces (replay protection: a
//	                                result's is set by the commit that applies it;
//	                                idempotency keys), with the TTL given, if any.
//	K lock:<name>           string  the fencing token of the holder; PX the lease.
//	K locks:fence           string  the token counter, shared by all lock names. Never
//	                                expires, so tokens only grow.
//
// Figures (store.Stats, the console's charts; stats.go):
//
//	K stats:<unix minute>   hash    counter name -> sum for that minute (HINCRBY);
//	                                EXPIREAT StatsRetention after the minute.
//	K samples:<series>      list    "unixnanos value" samples (RPUSH), trimmed to the
//	                                series' limit; PEXPIRE its TTL after each sample.
//
// Outbox:
//
//	K outbox                stream  the events of job writes (Effects.Events), appended
//	                                by the commit script in the same step as the write,
//	                                and events appended alone (AppendEvents: a job's
//	                                in its tree's shard, others in turn); one field
//	                                "e": the encoded event. Read with XREAD after a
//	                                cursor (blocking for ReadEvents' wait), trimmed with
//	                                XTRIM MINID once every shared consumer handled it
//	                                and it is older than the relay's Keep (1 min; the
//	                                relay trims every 10 s, internal/outbox).
//
// Pub/sub channels (one subscription per Store, not one per waiter):
//
//	K ch:ready              payload: how many jobs became ready.
//	K ch:queues             payload: the name of a queue that received tasks
//	                        ("<shard index>|<name>" with several shards).
//	K ch:signal             with several shards, one per shard (SSUBSCRIBE, a
//	                        connection each; SPUBLISH keeps a message on the
//	                        shard's master): the shard received outbox events
//	                        or timers (payload: its index).
//
// # Atomicity
//
// Every change that spans keys is one Lua script (scripts.go) or one
// MULTI. The keys a script touches are passed in KEYS, built in Go, except
// the queue and running-set keys of the tasks a script moves, which it
// builds from tasks:where and the shard's prefix (same hash tag), so
// that no round trip locates a task first, the job key of takeReadyScript
// (made from the shard's prefix and the job id it takes), and the keys of
// commitScript:
// it is given only the jobs' keys (and the once and reputation keys) and
// makes the shard's keys from its prefix and the part records' keys from
// the job's key when it uses them. Lua hashes every byte of every string
// it is given, so a commit passes only what it uses, and its work comes as
// positional ops in ARGV (checks first, then writes; see commitScript)
// rather than a JSON plan that Lua would decode field by field: together
// about 15% less Redis CPU per one-task job than passing the shard's 13
// keys and a job's four part keys every time with a JSON plan.
//
//   - commitScript (CreateJob, UpdateJob): checks the job's version (or its
//     absence) and the absence of every child job, and only then writes the
//     job's header and the changes
//     of its parts (with their TTL and index entries), the child jobs, task removals and enqueues (with queue set,
//     location and load bookkeeping), timer cancels and adds, ready pushes
//     and the outbox events, and publishes on the ready channel when it
//     queued jobs and on the queue channel once per queue it enqueued into
//     (a task handed to a waiting poll publishes nothing), and with several
//     shards on the shard's signal channel too when it appends events or
//     adds timers; last, the results' reputation rewards (Effects.Rewards: the same Lua function as
//     adjustReputationScript, each one's value and the one before returned). The
//     claims committed with the write (Effects.Claims: pickups and their claims
//     in one round trip) are checked with the rest, each task among the first
//     Within of its queue (ZRANK) once the tasks claimed before it in the
//     list have left it, and moved to the worker's running set as
//     claimNextScript moves it; the tasks the last left in its queue come back for
//     the claim hints. A version conflict, an existing child, a missing job,
//     a taken once-key (SET NX, the last checks, the keys set before it
//     deleted again) or a claim whose task is not
//     near the head writes nothing (no event or reward either). The engine
//     commits the writes of several tasks of one job that queued behind
//     each other as one write: their claims, once-keys and rewards are the
//     lists. A task
//     handed at its dispatch (Effects.Hand: a poll of its worker waits in
//     the writing process) goes straight into the worker's running set, its
//     location and load, with no queue, claim or pickup write. A run of
//     records of one kind (a fan-out's task records, dispatch decisions,
//     done records or queued tasks) is written with one command per key,
//     512 arguments at most each, rather than one command per record.
//   - readJobScript (GetJob, LoadJob): the header and the parts asked for
//     in one consistent view.
//   - pushReadyScript, takeReadyScript (reclaims lapsed leases, pops the
//     oldest job, leases it and returns its stored version, so that an
//     executor holding a copy at that version need not read the job),
//     extendReadyScript, doneReadyScript (re-queues a job marked dirty
//     during its lease).
//   - claimTaskScript: a queued task moves to one worker's running set; of
//     many concurrent claims, from any process, exactly one succeeds.
//     claimNextScript does the same with a queue's head (ClaimNext): polls
//     racing for one queue each get a different task; claimShardHeadScript,
//     with several shards, only if the head does not come after a given
//     one, and returns the shard's next head.
//     releaseTaskScript removes it only for its holder. peekTasksScript reads
//     a queue and its documents in one view.
//   - dueTimersScript: returns due timers and moves them to now+visibility in
//     the same step, so two processes never get one due timer at once, and
//     the timers of a claimer that died fire again.
//   - putWorkerScript, touchWorkerScript, expiredWorkersScript: the record
//     and its expiry entry change together; adjustReputationScript adds and
//     clamps in one step; workerFiguresScript reads the given workers'
//     reputations and the loads in one view (with several shards, one HMGET
//     of the reputations and a pipeline of every shard's loads).
//   - incrScript, incrIfBelowScript: the window's expiry is set only when
//     the counter is created; the limit check and the increment are one
//     step. acquireLockScript takes a free lock with the next fencing token;
//     refreshLockScript and releaseLockScript act only for the token holder.
//   - purgeIndexScript drops index entries of expired jobs, re-checking each
//     against the server clock.
//   - AddTimers, DeleteTimers and DeleteWorker are MULTI transactions (one
//     per shard: a Cluster has none across slots).
//
// With several shards, what no script can do across slots is done shard by
// shard: NextReady visits the shards from a rotating one and stops at the
// first that hands out a job; DueTimers collects due timers across the
// shards until it has its limit, skipping those known to have none due; ClaimTask and ReleaseTask look only in
// the shard the task id names (a commit that enqueues or removes a task of
// another tree is refused); PeekTasks, RunningTasks, QueueLengths, Loads,
// WorkerFigures, NextTimer and WatchQueues merge every shard's answer;
// ListJobs merges the shards' indexes newest first (the cursor is the same
// for all shards). An Effects.Onces key (an idempotency key) is a value,
// in the shard its name hashes to (store.NameByte); the engine gives a job
// created with one an id of that shard (store.NewTreeIDFor), so the commit
// sets the key in its own script. A job in another shard (an id not made
// for the key) has its key set with SET NX before the commit and deleted
// again if the commit is refused; if the process dies between the two, the
// key stays without a job for its TTL. workers:reputation is
// deployment-wide, in no shard's slot: a commit leaves its Effects.Rewards
// to the caller (Reward.Applied false), who adjusts it after the write.
// The outbox is one stream per shard; ReadEvents merges them by
// stream id, each entry's id being the position after it over all streams
// (store.JoinEventPosition): no entry is skipped, and the events of one job
// tree keep their order.
//
// So that these readers do not ask every shard each time, a sharded Store
// keeps what it learned of each shard (hints.go, signal.go):
//
//   - ClaimNext remembers, per queue, each shard's head as a full look (one
//     pipeline over the shards) found it, and claims from the shard whose
//     head comes first with claimShardHeadScript, which refuses when that
//     shard's actual head comes after another remembered one and returns
//     the shard's next head. Heads only move back as tasks are claimed, so
//     the order holds. An enqueue's queue message names its shard
//     ("<shard>|<queue>" with several shards), whose head the next claim
//     reads (one command); what this misses (a task with an earlier score
//     in a shard that has a head, a lost message) is seen at the next full
//     look, after 32 claims, 1 s or when the remembered shards are spent:
//     no shard starves.
//   - A queue found empty everywhere (by a look or PeekTasks, or as claims
//     empty its shards) is known empty until the queue channel names it
//     (the Store's own commits count at once) or 2 s pass: ClaimNext and
//     PeekTasks then send nothing. A Store of one shard does this too: a
//     worker's poll that begins after its queue emptied, and its look at
//     the pending queues of its skills, cost no command. A commit's own
//     queue messages count once: it expects their echoes before it runs,
//     and a message that finds its payload expected counts for nothing
//     (another process's taken for it is counted by the echo, which still
//     comes; a failed commit counts as a message).
//   - ReadEvents reads only the shards whose stream may hold entries after
//     the cursor, and waits, holding no connection, for a shard's signal;
//     DueTimers skips the shards whose earliest timer is later, and
//     NextTimer reads only those it does not know. What is known of a shard
//     holds until its signal channel (or the Store's own commit) says it
//     changed, or 2 s pass, so a lost message only delays.
//   - WorkerFigures (with one shard too) answers from what it read last,
//     the reputations and every shard's loads, for 20 ms, adding the tasks
//     the Store itself queued for workers and the reputations it wrote
//     since: under load one read per 20 ms, not one per dispatch. A copy
//     up to 1 s old answers too, while a read in the background renews
//     it, so that a dispatch after a quiet spell does not wait for it.
//
// # Round trips
//
// Each commit is one script call, but concurrent commits share round trips
// (batch.go): at most two batches of commits are out at once, and a commit
// that finds two out waits; when a batch comes back, the first waiting
// commit sends every waiting one as one pipeline of EVALSHAs. A commit with
// nothing else out goes at once, alone, so a quiet deployment sends what it
// did before. Under load a round trip (a write that wakes Redis, Redis's
// read and reply, the reply's read) costs the orchestrator and Redis more
// than the script it carries: a drained one-task job on one Redis goes from
// 3.2 round trips to 0.4, with 0.87x the process CPU and 0.76x the Redis
// CPU per job (BENCHMARKS.md). The pipelined commits stay separate scripts,
// each atomic on its own; on a Cluster, go-redis splits a pipeline by
// master. A commit whose context ended while it waited is not sent; a sent
// one is waited for (the client's read timeout bounds it), since it may
// have been carried out.
//
// # Waiting across processes
//
// NextReady waits in memory: a caller that finds the queue empty sleeps on
// a channel, holding no connection. The Store's subscription wakes as many
// local waiters as jobs were pushed (by any process); a waiter that takes a
// job while more are queued wakes the next one, and one that gives up
// after being woken passes the wake-up on. Lapsed leases are found by the
// take script, which also tells when the earliest lease lapses; a timer
// then wakes one waiter. WatchQueues reports the non-empty queues when it
// starts, then every queue name published by an enqueue. go-redis pings
// the subscription and reconnects it; because messages published while it
// was down are lost, after every resubscription (as soon as Redis answers
// again) the Store wakes all its waiters and re-announces every non-empty
// queue to its watchers.
//
// # Errors
//
// A missing key is store.ErrNotFound. Failures to reach the server (dial
// errors, timeouts, broken connections, an exhausted pool, a closed client,
// a loading, read-only or failing-over server) match store.ErrUnavailable.
// When the caller's context ends, the context's error is returned.
//
// # What was tested
//
// The conformance suite (store/storetest) and this package's tests run
// against a single standalone Redis 7.0 over redis:// without TLS or
// password (with one shard and with 16), and the suite again on a local
// Redis Cluster of three masters with 16 shards, next to a test that 1,000
// job trees spread their keys over the three masters (none holds more than
// half): two Stores on one prefix stand for two processes (cross-process
// wake-ups, claims, timer claims, lease recovery after a process dies),
// prefixes isolate deployments, and a TCP proxy that is cut and restored
// plays an outage (errors match ErrUnavailable; waiters and watchers catch
// up after the reconnection). URL parsing (password, DB, rediss://) is
// tested without a server. What a sharded Store keeps of its shards is
// tested on its own: claims keep queue order over shards and starve none,
// a known-empty queue and a caught-up outbox or timer read send nothing,
// another process's task, event and timer are seen from its message, and
// ones written with no message (a lost one) within the 2 s fallback.
// Batched commits are tested on the standalone server and on the cluster
// (commits in slots of different masters): each commit's own reply or
// error, their order, a commit whose context ended while it waited not
// sent, and a script the server does not know yet loaded for a batch.
//
// Not tested: a Cluster with replicas failing over or resharding while
// jobs run, Sentinel, TLS and ACL users against a real server, Redis
// versions before 7, and network partitions longer than go-redis' retry
// and health-check windows beyond the proxy test.
//
// # Limitations
//
//   - With one shard, one deployment is one hash slot, hence one master of
//     a Cluster. With N, readers that span shards still send up to N
//     commands (pipelined by master) where one sufficed when what the Store
//     knows runs out: about twice the commands per job of one shard
//     (BENCHMARKS.md), for a load that several masters share.
//   - With N shards, another process's enqueue, outbox entry or timer is
//     seen when its message arrives (a lost one: within 2 s); an outbox
//     entry may come after entries of other trees written up to a message's
//     delay later. With any number, a task another process queues is
//     claimed once its message arrives (a queue known empty is not read
//     before), and the loads and reputations that other processes change,
//     and tasks that end, count in a dispatch within 20 ms (the first
//     dispatch after a quiet spell: within 1 s).
//   - The number of shards is fixed for the life of a deployment's jobs.
//   - Batched commits were measured with Redis on the same host only. With
//     Redis on another, a commit that finds two batches out waits for one
//     to come back, up to a round trip longer than it would have alone;
//     the limit of two is not configurable.
//   - Several shards need Redis 7.0 or later (SPUBLISH, SSUBSCRIBE), and
//     one more pub/sub connection per shard for each Store.
//   - Across job trees, a sharded store hands out ready jobs and outbox
//     entries in about the order written (shards in turn; entries written
//     within the same millisecond, or within the masters' clock skew, in
//     either order), not strictly.
//   - ListJobs filters on status and blueprint by reading the documents of
//     the (client's) index in batches; there is no index per status.
//   - Leases carry no holder token (the interface has none): a holder whose
//     lease lapsed and was reclaimed can still extend or end the new
//     holder's lease, exactly as with the memory store. Job writes stay
//     safe through their versions.
//   - Identifiers travel to the commit script inside JSON and must be valid
//     UTF-8 (they always are when they come from JSON APIs).
package redis
