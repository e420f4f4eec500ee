package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically on the server; the keys a script
// touches are passed in KEYS (built in Go by keys) or made by the script
// from the shard's prefix (see commitScript), and all keys of a shard
// share one hash tag, so the scripts run unchanged on a Redis Cluster. Times that bound leases and TTLs come from the server's clock
// (TIME), so that processes with skewed clocks agree. Numbers that must not
// lose precision (versions, scores) travel as strings.

// luaLib is prepended to every script that needs it.
const luaLib = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- push_ready queues a job for an executor step unless it is queued already
-- or leased (then it is marked dirty and queued when the lease ends).
-- Returns 1 when it queued the job.
local function push_ready(queue, seq, leases, dirty, id)
  if redis.call('ZSCORE', leases, id) then
    redis.call('SADD', dirty, id)
    return 0
  end
  if redis.call('ZSCORE', queue, id) then
    return 0
  end
  redis.call('ZADD', queue, redis.call('INCR', seq), id)
  return 1
end

-- done_ready ends a lease; a job marked ready meanwhile is queued again.
-- Returns 1 when it queued the job.
local function done_ready(queue, seq, leases, dirty, id)
  if redis.call('ZREM', leases, id) == 1 and redis.call('SREM', dirty, id) == 1 then
    return push_ready(queue, seq, leases, dirty, id)
  end
  return 0
end

-- batched sends cmd on key with args, several commands of 512 arguments
-- at most when there are more (Lua's stack bounds unpack).
local function batched(cmd, key, args)
  for s = 1, #args, 512 do
    redis.call(cmd, key, unpack(args, s, math.min(s + 511, #args)))
  end
end

local function add_load(loads, worker, delta)
  if redis.call('HINCRBY', loads, worker, delta) <= 0 then
    redis.call('HDEL', loads, worker)
  end
end

-- to_running moves task id, just taken out of queue q (named name), to a
-- worker's running set, and its load from the queue's worker, if any, to
-- that worker. Returns the task document, or nil (and forgets the task)
-- when the queue held an id without its document, and the tasks left in q.
local function to_running(where, data, loads, queues, q, name, running, id, worker, loc)
  local left = redis.call('ZCARD', q)
  if left == 0 then redis.call('SREM', queues, name) end
  local doc = redis.call('HGET', data, id)
  if not doc then
    redis.call('HDEL', where, id)
    return nil, left
  end
  redis.call('HDEL', data, id)
  redis.call('HSET', running, id, doc)
  redis.call('HSET', where, id, loc)
  -- A task queued for a worker counts in its load already.
  if name ~= 'worker:' .. worker then
    if string.sub(name, 1, 7) == 'worker:' then add_load(loads, string.sub(name, 8), -1) end
    add_load(loads, worker, 1)
  end
  return doc, left
end

-- take_out removes a task from the queue or running set that holds it,
-- as tasks:where says, and from its worker's load. Queue and running-set
-- keys are built from the deployment's prefix: they share its hash tag.
local function take_out(where, data, loads, queues, prefix, id)
  local at = redis.call('HGET', where, id)
  if not at then return end
  local kind, name = string.sub(at, 1, 2), string.sub(at, 3)
  local worker
  if kind == 'q:' then
    local q = prefix .. 'tq:' .. name
    redis.call('ZREM', q, id)
    redis.call('HDEL', data, id)
    if redis.call('ZCARD', q) == 0 then redis.call('SREM', queues, name) end
    if string.sub(name, 1, 7) == 'worker:' then worker = string.sub(name, 8) end
  else
    redis.call('HDEL', prefix .. 'running:' .. name, id)
    worker = name
  end
  if worker then add_load(loads, worker, -1) end
  redis.call('HDEL', where, id)
end

-- adjust_reputation adds delta to a worker's reputation in hash key
-- (initial when it has none), clamps it to [floor, ceil] and stores it.
-- The figures are decimal strings; returns the new value as one, exact
-- (%.17g), and the value before it.
local function adjust_reputation(key, id, delta, initial, floor, ceil)
  local stored = redis.call('HGET', key, id)
  local before = stored or initial
  local r = tonumber(before) + tonumber(delta)
  r = math.min(math.max(r, tonumber(floor)), tonumber(ceil))
  local s = string.format('%.17g', r)
  -- One at its bound stays there: nothing to write.
  if s ~= stored then redis.call('HSET', key, id, s) end
  return s, before
end
`

// commitScript creates or updates a job and applies its Effects: the
// version check, child creation (all or nothing), task removals and
// enqueues, timer cancels and adds and ready pushes happen in one step.
//
// KEYS: the keys the ops refer to by index: the jobs written, the once
// key, workers:reputation. The script makes the shard's other keys from
// its prefix when it needs them, and a job's part records' keys from the
// job's key: they share the job's hash tag, so the script runs unchanged
// on a Redis Cluster, and a commit passes and hashes (Lua hashes every
// byte of every string) only the keys it uses.
// ARGV: 1 the ready channel, 2 the queue channel, 3 the shard's key
// prefix, 4 the number of documents, then the documents, then the ops,
// each a name and a fixed number of arguments (doc: an ARGV index; built
// by commitArgs, in this order, so that every check comes before any
// write; positional rather than one JSON plan, which costs Lua a decode
// of every field):
//
//	V key id expect ending    check a job: it must not exist (expect ""),
//	                          or be stored at version expect; ending "1":
//	                          the update ends it (its index entry is read)
//	H within queue id         the claimed task must be among the first
//	                          within of its queue, not counting the tasks
//	                          of the H ops before it
//	O key value ttl           take the once key (ttl in ms, "" for none);
//	                          a taken one gives back those of the O ops
//	                          before it
//	C queue id worker         claim the task for the worker (to_running)
//	J key expect version doc ttl member client data
//	                          write a job's header (ttl: its retention when
//	                          it ends, else ""; member, client: its index
//	                          entry, on creation), with its initial data
//	                          (field in) when data is a doc; then its parts:
//	hp part id doc, hd part id
//	                          put or delete a record of a hash part: a
//	                          task record (tasks), a branch result
//	                          (branches)
//	dp id status              record a finished task
//	xp doc                    append a dispatch decision
//	pe part                   a part that holds records after the write
//	F                         end the job: index it (creation), expire it
//	                          with its parts pe (ending) or revive it
//	M id                      take a task out of wherever it is (take_out)
//	Q id score doc queue worker
//	                          queue a task (worker: whose load it counts in)
//	P id worker doc           hand a task to its worker: into its running
//	                          set, in its load (Effects.Hand)
//	X key doc, T key score doc
//	                          cancel or add a timer (doc "" for none; see
//	                          timerDoc)
//	R id, D id                mark a job ready, end the lease on one
//	E doc                     append an event to the outbox
//	K prefix                  the queue messages' prefix (several shards)
//	S channel shard           SPUBLISH the shard's signal
//	W key worker delta initial floor ceiling
//	                          adjust a reputation (adjust_reputation)
//
// Returns {"ok"} ({"ok", reputation after, before, ...} with rewards, a
// pair for each; with claims, the tasks the last left in its queue last),
// {"nothead", n} (the nth of Effects.Claims is not near the head),
// {"once", n} (the nth of Effects.Onces is taken),
// {"exists", id}, {"notfound", id} or {"conflict", stored version};
// nothing is written unless it returns "ok".
var commitScript = goredis.NewScript(luaLib + `
local pfx, n = ARGV[3], #ARGV
local i = 5 + tonumber(ARGV[4])
-- The shard's task keys, made when first needed.
local where, data, loads, queues
local function task_keys()
  if not where then
    where, data = pfx .. 'tasks:where', pfx .. 'tasks:data'
    loads, queues = pfx .. 'tasks:loads', pfx .. 'tasks:queues'
  end
end

-- Checks: nothing is written unless all pass. e is '1' when the stored
-- job ended (its keys expire), '0' when not, nil in records of before;
-- an update that ends a job reads its index entry (c, m) with them.
local ended, entries, jn = {}, {}, 0
-- The claims checked ({queue, rank}) and the once-keys set so far, made
-- when first needed (most commits take neither).
local claimed, onces
while i <= n do
  local op = ARGV[i]
  if op == 'V' then
    jn = jn + 1
    local key, x = KEYS[tonumber(ARGV[i + 1])], ARGV[i + 3]
    local h
    if ARGV[i + 4] == '1' then
      h = redis.call('HMGET', key, 'v', 'e', 'c', 'm')
      entries[jn] = cjson.encode({h[3] or '', h[4] or ''})
    else
      h = redis.call('HMGET', key, 'v', 'e')
    end
    local v = h[1]
    ended[jn] = h[2]
    if x == '' then
      if v then return {'exists', ARGV[i + 2]} end
    elseif not v then
      return {'notfound', ARGV[i + 2]}
    elseif v ~= x then
      return {'conflict', v}
    end
    i = i + 5
  elseif op == 'H' then
    -- Near the head once the tasks claimed before it have left the queue.
    claimed = claimed or {}
    local q, nth = ARGV[i + 2], tostring(#claimed + 1)
    local r = redis.call('ZRANK', pfx .. 'tq:' .. q, ARGV[i + 3])
    if not r then return {'nothead', nth} end
    local ahead = 0
    for _, c in ipairs(claimed) do
      if c[1] == q then
        if c[2] == r then return {'nothead', nth} end
        if c[2] < r then ahead = ahead + 1 end
      end
    end
    if r - ahead >= tonumber(ARGV[i + 1]) then return {'nothead', nth} end
    claimed[#claimed + 1] = {q, r}
    i = i + 4
  elseif op == 'O' then
    -- The last checks set the once keys: a taken key writes nothing, and
    -- takes back those set before it.
    onces = onces or {}
    local k, set = KEYS[tonumber(ARGV[i + 1])], nil
    if ARGV[i + 3] ~= '' then
      set = redis.call('SET', k, ARGV[i + 2], 'NX', 'PX', ARGV[i + 3])
    else
      set = redis.call('SET', k, ARGV[i + 2], 'NX')
    end
    if not set then
      for _, o in ipairs(onces) do redis.call('DEL', o) end
      return {'once', tostring(#onces + 1)}
    end
    onces[#onces + 1] = k
    i = i + 4
  else
    break
  end
end

local left, now, key, job, expire
local notify, qk, sig, rep, ready = {}, '', nil, nil, 0
local timers, docs, rq, rs, rl, rd
jn = 0
while i <= n do
  local op = ARGV[i]
  if op == 'C' then
    local q, id, w = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local qkey = pfx .. 'tq:' .. q
    redis.call('ZREM', qkey, id)
    task_keys()
    local _
    _, left = to_running(where, data, loads, queues, qkey, q, pfx .. 'running:' .. w, id, w, 'r:' .. w)
    i = i + 4
  elseif op == 'J' then
    jn, job, expire = jn + 1, i, {}
    key = KEYS[tonumber(ARGV[i + 1])]
    local e, doc, input = ARGV[i + 5] ~= '' and '1' or '0', ARGV[tonumber(ARGV[i + 4])], ARGV[i + 8]
    -- Spelled out rather than built as a table: one command either way.
    if ARGV[i + 2] == '' then
      -- m, c: the job's index entry, kept to find it again when it expires.
      if input ~= '' then
        redis.call('HSET', key, 'doc', doc, 'v', ARGV[i + 3], 'e', e, 'm', ARGV[i + 6], 'c', ARGV[i + 7], 'in', ARGV[tonumber(input)])
      else
        redis.call('HSET', key, 'doc', doc, 'v', ARGV[i + 3], 'e', e, 'm', ARGV[i + 6], 'c', ARGV[i + 7])
      end
    elseif input ~= '' then
      redis.call('HSET', key, 'doc', doc, 'v', ARGV[i + 3], 'e', e, 'in', ARGV[tonumber(input)])
    else
      redis.call('HSET', key, 'doc', doc, 'v', ARGV[i + 3], 'e', e)
    end
    i = i + 9
  -- A run of records of one part (a fan-out's tasks, say) goes out as one
  -- command: a redis.call costs more than the bytes it carries.
  elseif op == 'hp' then
    local part, args = ARGV[i + 1], {}
    repeat
      args[#args + 1] = ARGV[i + 2]
      args[#args + 1] = ARGV[tonumber(ARGV[i + 3])]
      i = i + 4
    until ARGV[i] ~= 'hp' or ARGV[i + 1] ~= part
    batched('HSET', key .. ':' .. part, args)
  elseif op == 'hd' then
    local part, args = ARGV[i + 1], {}
    repeat
      args[#args + 1] = ARGV[i + 2]
      i = i + 3
    until ARGV[i] ~= 'hd' or ARGV[i + 1] ~= part
    batched('HDEL', key .. ':' .. part, args)
  elseif op == 'dp' then
    local args = {}
    repeat
      args[#args + 1] = ARGV[i + 1]
      args[#args + 1] = ARGV[i + 2]
      i = i + 3
    until ARGV[i] ~= 'dp'
    batched('HSET', key .. ':done', args)
  elseif op == 'xp' then
    local args = {}
    repeat
      args[#args + 1] = ARGV[tonumber(ARGV[i + 1])]
      i = i + 2
    until ARGV[i] ~= 'xp'
    batched('RPUSH', key .. ':dispatches', args)
  elseif op == 'pe' then
    expire[#expire + 1] = ARGV[i + 1]
    i = i + 2
  elseif op == 'F' then
    local x, t, m = ARGV[job + 2], ARGV[job + 5], ARGV[job + 6]
    if x == '' then
      redis.call('ZADD', pfx .. 'jobs:all', 0, m)
      redis.call('ZADD', pfx .. 'jobs:client:' .. ARGV[job + 7], 0, m)
    end
    local revived = t == '' and x ~= '' and
      (ended[jn] == '1' or (not ended[jn] and redis.call('PTTL', key) >= 0))
    if t ~= '' or revived then
      -- The index entry: read with the checks, the one written for a job
      -- created ended, or a revived job's, read now.
      local entry = entries[jn]
      if x == '' then
        entry = cjson.encode({ARGV[job + 7], m})
      elseif not entry then
        local idx = redis.call('HMGET', key, 'c', 'm')
        entry = cjson.encode({idx[1] or '', idx[2] or ''})
      end
      if t ~= '' then
        now = now or now_ms()
        redis.call('PEXPIRE', key, t)
        for _, part in ipairs(expire) do redis.call('PEXPIRE', key .. ':' .. part, t) end
        redis.call('ZADD', pfx .. 'jobs:expiring', now + tonumber(t), entry)
      else
        redis.call('PERSIST', key)
        for _, part in ipairs({'tasks', 'branches', 'done', 'dispatches'}) do redis.call('PERSIST', key .. ':' .. part) end
        redis.call('ZREM', pfx .. 'jobs:expiring', entry)
      end
    end
    i = i + 1
  elseif op == 'M' then
    task_keys()
    take_out(where, data, loads, queues, pfx, ARGV[i + 1])
    i = i + 2
  elseif op == 'Q' then
    -- A run of queued tasks is written with one command per key.
    task_keys()
    local qs, byq, docs, locs, ws, byw = {}, {}, {}, {}, {}, {}
    repeat
      local id, q, w = ARGV[i + 1], ARGV[i + 4], ARGV[i + 5]
      local z = byq[q]
      if not z then
        z = {}
        qs[#qs + 1] = q
        byq[q] = z
      end
      table.insert(z, ARGV[i + 2])
      table.insert(z, id)
      table.insert(docs, id)
      table.insert(docs, ARGV[tonumber(ARGV[i + 3])])
      table.insert(locs, id)
      table.insert(locs, 'q:' .. q)
      if w ~= '' then
        if not byw[w] then
          ws[#ws + 1] = w
          byw[w] = 0
        end
        byw[w] = byw[w] + 1
      end
      notify[q] = true
      i = i + 6
    until ARGV[i] ~= 'Q'
    for _, q in ipairs(qs) do batched('ZADD', pfx .. 'tq:' .. q, byq[q]) end
    batched('HSET', data, docs)
    batched('HSET', where, locs)
    batched('SADD', queues, qs)
    for _, w in ipairs(ws) do add_load(loads, w, byw[w]) end
  elseif op == 'P' then
    -- A task handed to its worker at its dispatch: running at once.
    local id, w = ARGV[i + 1], ARGV[i + 2]
    task_keys()
    redis.call('HSET', pfx .. 'running:' .. w, id, ARGV[tonumber(ARGV[i + 3])])
    redis.call('HSET', where, id, 'r:' .. w)
    add_load(loads, w, 1)
    i = i + 4
  elseif op == 'X' or op == 'T' then
    if not timers then timers, docs = pfx .. 'timers', pfx .. 'timers:data' end
    if op == 'X' then
      redis.call('ZREM', timers, ARGV[i + 1])
      if ARGV[i + 2] ~= '' then redis.call('HDEL', docs, ARGV[i + 1]) end
      i = i + 3
    else
      redis.call('ZADD', timers, ARGV[i + 2], ARGV[i + 1])
      if ARGV[i + 3] ~= '' then redis.call('HSET', docs, ARGV[i + 1], ARGV[tonumber(ARGV[i + 3])]) end
      i = i + 4
    end
  elseif op == 'R' or op == 'D' then
    if not rq then rq, rs, rl, rd = pfx .. 'ready:queue', pfx .. 'ready:seq', pfx .. 'ready:leases', pfx .. 'ready:dirty' end
    if op == 'R' then
      ready = ready + push_ready(rq, rs, rl, rd, ARGV[i + 1])
    else
      ready = ready + done_ready(rq, rs, rl, rd, ARGV[i + 1])
    end
    i = i + 2
  elseif op == 'E' then
    redis.call('XADD', pfx .. 'outbox', '*', 'e', ARGV[tonumber(ARGV[i + 1])])
    i = i + 2
  elseif op == 'K' then
    qk = ARGV[i + 1]
    i = i + 2
  elseif op == 'S' then
    sig = i
    i = i + 3
  elseif op == 'W' then
    rep = rep or {}
    rep[#rep + 1] = i
    i = i + 7
  else
    return redis.error_reply('commit: unknown op ' .. tostring(op))
  end
end
if ready > 0 then redis.call('PUBLISH', ARGV[1], ready) end
for q in pairs(notify) do redis.call('PUBLISH', ARGV[2], qk .. q) end
if sig then redis.call('SPUBLISH', ARGV[sig + 1], ARGV[sig + 2]) end
local out = {'ok'}
for _, r in ipairs(rep or {}) do
  out[#out + 1], out[#out + 2] = adjust_reputation(KEYS[tonumber(ARGV[r + 1])], ARGV[r + 2], ARGV[r + 3], ARGV[r + 4], ARGV[r + 5], ARGV[r + 6])
end
if left then out[#out + 1] = tostring(left) end
return out
`)

// purgeIndexScript drops the index entries of jobs whose retention ended.
// KEYS: 1 jobs:expiring, 2 jobs:all, then client indexes.
// ARGV: triples of (expiring member, index member, client index KEYS slot).
var purgeIndexScript = goredis.NewScript(luaLib + `
local now = now_ms()
local n = 0
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i + 1])
    redis.call('ZREM', KEYS[tonumber(ARGV[i + 2])], ARGV[i + 1])
    n = n + 1
  end
end
return n
`)

// Ready queue scripts. KEYS: 1 ready:queue, 2 ready:seq, 3 ready:leases,
// 4 ready:dirty.

// pushReadyScript marks jobs ready. ARGV: 1 ready channel, then job ids.
var pushReadyScript = goredis.NewScript(luaLib + `
local n = 0
for i = 2, #ARGV do
  n = n + push_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[i])
end
if n > 0 then redis.call('PUBLISH', ARGV[1], n) end
return n
`)

// takeReadyScript makes jobs whose lease lapsed ready again, then takes the
// oldest ready job, if any, and leases it. ARGV: 1 lease (ms), 2 ready
// channel, 3 the shard's key prefix (the job's key is made from it: they
// share the hash tag). Returns {id or "", jobs still queued, ms until the
// next lease lapses or -1, the job's stored version or ""}.
var takeReadyScript = goredis.NewScript(luaLib + `
local now = now_ms()
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)
local reclaimed = 0
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  reclaimed = reclaimed + push_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id)
end
local id, version = '', ''
local top = redis.call('ZPOPMIN', KEYS[1])
if top[1] then
  id = top[1]
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
  version = redis.call('HGET', ARGV[3] .. 'job:' .. id, 'v') or ''
end
local rest = redis.call('ZCARD', KEYS[1])
if reclaimed > 0 and rest > 0 then redis.call('PUBLISH', ARGV[2], rest) end
local wait = -1
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if first[2] then wait = math.max(tonumber(first[2]) - now, 0) end
return {id, rest, wait, version}
`)

// extendReadyScript renews a lease. ARGV: 1 job id, 2 lease (ms).
// Returns 0 when the job is not leased.
var extendReadyScript = goredis.NewScript(luaLib + `
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[3], 'XX', now_ms() + tonumber(ARGV[2]), ARGV[1])
return 1
`)

// doneReadyScript ends a lease and queues the job again if it was marked
// ready meanwhile. ARGV: 1 job id, 2 ready channel.
var doneReadyScript = goredis.NewScript(luaLib + `
if done_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], 1)
end
return 0
`)

// readJobScript reads a job in one consistent view. KEYS: 1 the job,
// 2 its tasks, 3 branches, 4 done, 5 dispatches. ARGV: 1 whole: read every
// part when the job has at most this many part records (-1: always), then
// the ids of the tasks to read otherwise. Returns {} when the job does not
// exist, else {doc, version, 1, tasks, branches, done, dispatches, in}
// for a whole read (hashes as field-value lists) or {doc, version, 0,
// tasks, {}, done, {}, in} with the named tasks and final statuses found;
// in is the initial data (false before format 3).
var readJobScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'doc', 'v', 'in')
if not h[1] then return {} end
local limit = tonumber(ARGV[1])
local whole = limit < 0
if not whole then
  local n = redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[3]) +
    redis.call('HLEN', KEYS[4]) + redis.call('LLEN', KEYS[5])
  whole = n <= limit
end
if whole then
  return {h[1], h[2], 1, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
    redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[5], 0, -1), h[3]}
end
local tasks, done = {}, {}
if #ARGV > 1 then
  local ids = {unpack(ARGV, 2)}
  local t = redis.call('HMGET', KEYS[2], unpack(ids))
  local d = redis.call('HMGET', KEYS[4], unpack(ids))
  for i, id in ipairs(ids) do
    if t[i] then tasks[#tasks + 1] = id; tasks[#tasks + 1] = t[i] end
    if d[i] then done[#done + 1] = id; done[#done + 1] = d[i] end
  end
end
return {h[1], h[2], 0, tasks, {}, done, {}, h[3]}
`)

// peekTasksScript reads the first tasks of a queue in one consistent view.
// KEYS: 1 the queue, 2 tasks:data. ARGV: 1 limit. Returns the documents.
var peekTasksScript = goredis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local doc = redis.call('HGET', KEYS[2], id)
  if doc then out[#out + 1] = doc end
end
return out
`)

// claimTaskScript moves a queued task, wherever it waits, to a worker's
// running set. KEYS: 1 tasks:where, 2 tasks:data, 3 tasks:loads,
// 4 tasks:queues, 5 the worker's running set. ARGV: 1 task id, 2 the
// deployment's key prefix (queue keys share its hash tag), 3 new worker,
// 4 new location. Returns the task document, or false when the task is not
// queued.
var claimTaskScript = goredis.NewScript(luaLib + `
local at = redis.call('HGET', KEYS[1], ARGV[1])
if not at or string.sub(at, 1, 2) ~= 'q:' then return false end
local name = string.sub(at, 3)
local q = ARGV[2] .. 'tq:' .. name
redis.call('ZREM', q, ARGV[1])
return to_running(KEYS[1], KEYS[2], KEYS[3], KEYS[4], q, name, KEYS[5], ARGV[1], ARGV[3], ARGV[4]) or false
`)

// claimNextScript moves the first task of a queue to a worker's running
// set. KEYS: 1 tasks:where, 2 tasks:data, 3 tasks:loads, 4 tasks:queues,
// 5 the queue, 6 the worker's running set. ARGV: 1 queue name, 2 new
// worker, 3 new location. Returns {the task document, the tasks left in
// the queue}, or false when the queue is empty.
var claimNextScript = goredis.NewScript(luaLib + `
while true do
  local top = redis.call('ZPOPMIN', KEYS[5])
  if not top[1] then
    redis.call('SREM', KEYS[4], ARGV[1])
    return false
  end
  local doc, left = to_running(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], KEYS[6], top[1], ARGV[2], ARGV[3])
  if doc then return {doc, left} end
end
`)

// claimShardHeadScript is claimNextScript for one shard of a sharded
// queue (ClaimNext, claimHints): it takes the head only if it does not
// come after a bound, the first head the caller knows in other shards.
// KEYS as claimNextScript. ARGV: 1 queue name, 2 worker, 3 location
// "r:<worker>", 4 the bound's score (empty for none), 5 its task id.
// Returns {} when the queue's part is empty, {false, score, id} (its head)
// when the head comes after the bound, otherwise {task document, score,
// id} with the head after the claim (false, false when none).
var claimShardHeadScript = goredis.NewScript(luaLib + `
while true do
  local top = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if not top[1] then
    redis.call('SREM', KEYS[4], ARGV[1])
    return {}
  end
  if ARGV[4] ~= '' then
    local sc, b = tonumber(top[2]), tonumber(ARGV[4])
    if sc > b or (sc == b and top[1] > ARGV[5]) then return {false, top[2], top[1]} end
  end
  redis.call('ZREM', KEYS[5], top[1])
  local doc = to_running(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], KEYS[6], top[1], ARGV[2], ARGV[3])
  if doc then
    local nxt = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    return {doc, nxt[2] or false, nxt[1] or false}
  end
end
`)

// releaseTaskScript forgets a running task if the worker holds it.
// KEYS: 1 tasks:where, 2 tasks:loads, 3 the worker's running set.
// ARGV: 1 task id, 2 location "r:<worker>", 3 worker.
var releaseTaskScript = goredis.NewScript(luaLib + `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
add_load(KEYS[2], ARGV[3], -1)
return 1
`)

// dueTimersScript claims due timers by moving them to the end of the
// visibility window. KEYS: 1 timers, 2 timers:data. ARGV: 1 now (µs),
// 2 limit, 3 visible again at (µs). Returns flat triples (key, due score,
// document).
var dueTimersScript = goredis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[3], due[i])
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], due[i]) or ''
end
return out
`)

// Worker scripts. KEYS: 1 the worker record, 2 workers:expiry.

// putWorkerScript replaces a worker record. ARGV: 1 id, 2 document,
// 3 ttl (ms).
var putWorkerScript = goredis.NewScript(luaLib + `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[1])
return 1
`)

// touchWorkerScript extends a live record. ARGV: 1 id, 2 ttl (ms),
// 3 last seen, 4 expires at (RFC 3339). Returns 0 when it is gone.
var touchWorkerScript = goredis.NewScript(luaLib + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[2]), ARGV[1])
return 1
`)

// expiredWorkersScript takes the workers whose TTL ran out off the expiry
// index, so that each is reported once. KEYS: 1 workers:expiry.
var expiredWorkersScript = goredis.NewScript(luaLib + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now_ms()))
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[1], id) end
return ids
`)

// workerFiguresScript reads reputations and loads. KEYS: 1
// workers:reputation, 2 tasks:loads. ARGV: worker ids. Returns {the
// reputations set, as a field-value list; the loads, likewise}.
var workerFiguresScript = goredis.NewScript(`
local reps = {}
if #ARGV > 0 then
  local r = redis.call('HMGET', KEYS[1], unpack(ARGV))
  for i, id in ipairs(ARGV) do
    if r[i] then reps[#reps + 1] = id; reps[#reps + 1] = r[i] end
  end
end
return {reps, redis.call('HGETALL', KEYS[2])}
`)

// adjustReputationScript adds delta and clamps. KEYS: 1 workers:reputation.
// ARGV: 1 id, 2 delta, 3 initial, 4 floor, 5 ceiling. Returns the new
// value as a string.
var adjustReputationScript = goredis.NewScript(luaLib + `
return (adjust_reputation(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]))
`)

// incrScript adds to a fixed-window counter; the expiry is set when the
// counter is created and never moved. KEYS: 1 counter. ARGV: 1 delta,
// 2 expire at (unix ms, "" for none).
var incrScript = goredis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return v
`)

// incrIfBelowScript adds 1 when the counter is below the limit.
// KEYS: 1 counter. ARGV: 1 limit, 2 expire at (unix ms, "" for none).
// Returns {value, 1 if incremented}.
var incrIfBelowScript = goredis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v >= tonumber(ARGV[1]) then return {v, 0} end
v = redis.call('INCR', KEYS[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return {v, 1}
`)

// Lock scripts. KEYS: 1 the lock, 2 locks:fence (acquire only).

// acquireLockScript takes a free lock with a new fencing token.
// ARGV: 1 ttl (ms). Returns the token, or 0 when the lock is held.
var acquireLockScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
`)

// refreshLockScript extends a lock its holder still holds. ARGV: 1 token,
// 2 ttl (ms).
var refreshLockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// releaseLockScript deletes a lock its holder still holds. ARGV: 1 token.
var releaseLockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// scriptNames maps each script's SHA1 to its name.
var scriptNames = func() map[string]string {
	named := map[string]*goredis.Script{
		"commit": commitScript, "read_job": readJobScript, "purge_index": purgeIndexScript,
		"push_ready": pushReadyScript, "take_ready": takeReadyScript, "extend_ready": extendReadyScript, "done_ready": doneReadyScript,
		"peek_tasks": peekTasksScript, "claim_task": claimTaskScript, "claim_next": claimNextScript, "claim_shard_head": claimShardHeadScript, "release_task": releaseTaskScript,
		"due_timers": dueTimersScript, "put_worker": putWorkerScript, "touch_worker": touchWorkerScript,
		"expired_workers": expiredWorkersScript, "worker_figures": workerFiguresScript, "adjust_reputation": adjustReputationScript,
		"incr": incrScript, "incr_if_below": incrIfBelowScript,
		"acquire_lock": acquireLockScript, "refresh_lock": refreshLockScript, "release_lock": releaseLockScript,
		"release_once": releaseOnceScript,
	}
	out := make(map[string]string, len(named))
	for name, s := range named {
		out[s.Hash()] = name
	}
	return out
}()

// ScriptName names the store's Lua script with the given SHA1 (the first
// argument of EVALSHA), or returns "" for another script. It is meant for
// diagnostics, such as the benchmark's count of commands per job.
func ScriptName(sha string) string { return scriptNames[sha] }

// releaseOnceScript deletes a once-key that still holds the value given.
// KEYS: 1 the key. ARGV: 1 the value.
var releaseOnceScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)
