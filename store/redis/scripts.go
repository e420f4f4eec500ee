package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically on the server; every key a script
// touches is passed in KEYS (built in Go by keys), and all keys of a
// deployment share one hash tag, so the scripts run unchanged on a Redis
// Cluster. Times that bound leases and TTLs come from the server's clock
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

local function add_load(loads, worker, delta)
  if redis.call('HINCRBY', loads, worker, delta) <= 0 then
    redis.call('HDEL', loads, worker)
  end
end
`

// commitScript creates or updates a job and applies its Effects: the
// version check, child creation (all or nothing), task removals and
// enqueues, timer cancels and adds and ready pushes happen in one step.
//
// KEYS: 1 tasks:where, 2 tasks:data, 3 tasks:loads, 4 tasks:queues,
// 5 timers, 6 timers:data, 7 ready:queue, 8 ready:seq, 9 ready:leases,
// 10 ready:dirty, 11 jobs:all, 12 jobs:expiring, 13 outbox, then the keys the plan
// refers to by index (jobs, client indexes, task queues, running sets).
// ARGV: 1 the plan (JSON, see commitPlan), 2 the ready channel, 3 the queue
// channel, then the documents the plan refers to by index.
//
// Returns {"ok"}, {"once"} (Effects.Once is taken), {"exists", id}, {"notfound", id}, {"conflict", stored
// version} or {"retry"} (a task moved since the caller located it; nothing
// was written).
var commitScript = goredis.NewScript(luaLib + `
local p = cjson.decode(ARGV[1])
-- Checks: nothing is written unless all pass.
for _, j in ipairs(p.jobs) do
  local v = redis.call('HGET', KEYS[j.k], 'v')
  if j.x == '' then
    if v then return {'exists', j.id} end
  elseif not v then
    return {'notfound', j.id}
  elseif v ~= j.x then
    return {'conflict', v}
  end
end
for _, m in ipairs(p.moves or {}) do
  if (redis.call('HGET', KEYS[1], m.id) or '') ~= m.f then return {'retry'} end
end
if p.once and redis.call('EXISTS', KEYS[p.once.k]) == 1 then return {'once'} end
if p.once then
  if p.once.t then
    redis.call('SET', KEYS[p.once.k], p.once.v, 'PX', p.once.t)
  else
    redis.call('SET', KEYS[p.once.k], p.once.v)
  end
end

local now = now_ms()
for _, j in ipairs(p.jobs) do
  local key = KEYS[j.k]
  redis.call('HSET', key, 'doc', ARGV[j.d], 'v', j.v)
  local pp = j.p
  for _, x in ipairs(pp.tp or {}) do redis.call('HSET', KEYS[pp.tk], x.i, ARGV[x.d]) end
  for _, id in ipairs(pp.td or {}) do redis.call('HDEL', KEYS[pp.tk], id) end
  for _, x in ipairs(pp.bp or {}) do redis.call('HSET', KEYS[pp.bk], x.i, ARGV[x.d]) end
  for _, id in ipairs(pp.bd or {}) do redis.call('HDEL', KEYS[pp.bk], id) end
  for _, x in ipairs(pp.dp or {}) do redis.call('HSET', KEYS[pp.dk], x.i, x.s) end
  for _, d in ipairs(pp.xp or {}) do redis.call('RPUSH', KEYS[pp.xk], ARGV[d]) end
  local partKeys = {KEYS[pp.tk], KEYS[pp.bk], KEYS[pp.dk], KEYS[pp.xk]}
  if j.x == '' then
    -- m, c: the job's index entry, kept to find it again when it expires.
    redis.call('HSET', key, 'm', j.m, 'c', j.cn)
    redis.call('ZADD', KEYS[11], 0, j.m)
    redis.call('ZADD', KEYS[j.c], 0, j.m)
  end
  if j.t or (j.x ~= '' and redis.call('PTTL', key) >= 0) then
    local idx = redis.call('HMGET', key, 'c', 'm')
    local entry = cjson.encode({idx[1] or '', idx[2] or ''})
    if j.t then
      redis.call('PEXPIRE', key, j.t)
      for _, pk in ipairs(partKeys) do redis.call('PEXPIRE', pk, j.t) end
      redis.call('ZADD', KEYS[12], now + tonumber(j.t), entry)
    else
      redis.call('PERSIST', key)
      for _, pk in ipairs(partKeys) do redis.call('PERSIST', pk) end
      redis.call('ZREM', KEYS[12], entry)
    end
  end
end
for _, m in ipairs(p.moves or {}) do
  if m.f ~= '' then
    local from = KEYS[m.k]
    if m.q then
      redis.call('ZREM', from, m.id)
      redis.call('HDEL', KEYS[2], m.id)
      if redis.call('ZCARD', from) == 0 then redis.call('SREM', KEYS[4], m.q) end
    else
      redis.call('HDEL', from, m.id)
    end
    if m.w then add_load(KEYS[3], m.w, -1) end
    redis.call('HDEL', KEYS[1], m.id)
  end
end
local notify = {}
for _, e in ipairs(p.enqueue or {}) do
  redis.call('ZADD', KEYS[e.k], e.s, e.id)
  redis.call('HSET', KEYS[2], e.id, ARGV[e.d])
  redis.call('HSET', KEYS[1], e.id, e.l)
  redis.call('SADD', KEYS[4], e.q)
  if e.w then add_load(KEYS[3], e.w, 1) end
  notify[e.q] = true
end
for _, key in ipairs(p.cancel or {}) do
  redis.call('ZREM', KEYS[5], key)
  redis.call('HDEL', KEYS[6], key)
end
for _, t in ipairs(p.timers or {}) do
  redis.call('ZADD', KEYS[5], t.s, t.key)
  redis.call('HSET', KEYS[6], t.key, ARGV[t.d])
end
local n = 0
for _, id in ipairs(p.ready or {}) do
  n = n + push_ready(KEYS[7], KEYS[8], KEYS[9], KEYS[10], id)
end
if p.done then
  n = n + done_ready(KEYS[7], KEYS[8], KEYS[9], KEYS[10], p.done)
end
for _, d in ipairs(p.events or {}) do
  redis.call('XADD', KEYS[13], '*', 'e', ARGV[d])
end
if n > 0 then redis.call('PUBLISH', ARGV[2], n) end
for q in pairs(notify) do redis.call('PUBLISH', ARGV[3], q) end
return {'ok'}
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
// channel. Returns {id or "", jobs still queued, ms until the next lease
// lapses or -1}.
var takeReadyScript = goredis.NewScript(luaLib + `
local now = now_ms()
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)
local reclaimed = 0
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  reclaimed = reclaimed + push_ready(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id)
end
local id = ''
local top = redis.call('ZPOPMIN', KEYS[1])
if top[1] then
  id = top[1]
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
end
local rest = redis.call('ZCARD', KEYS[1])
if reclaimed > 0 and rest > 0 then redis.call('PUBLISH', ARGV[2], rest) end
local wait = -1
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if first[2] then wait = math.max(tonumber(first[2]) - now, 0) end
return {id, rest, wait}
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

// claimTaskScript moves a queued task to a worker's running set.
// KEYS: 1 tasks:where, 2 tasks:data, 3 tasks:loads, 4 tasks:queues, 5 the
// queue, 6 the worker's running set. ARGV: 1 task id, 2 expected location,
// 3 queue name, 4 worker the queue is for ("" for a pending queue), 5 new
// worker, 6 new location. Returns the task document, false when the task
// is not queued, or "retry" when it moved since the caller located it.
var claimTaskScript = goredis.NewScript(luaLib + `
local at = redis.call('HGET', KEYS[1], ARGV[1])
if not at then return false end
if at ~= ARGV[2] then return 'retry' end
local doc = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('ZCARD', KEYS[5]) == 0 then redis.call('SREM', KEYS[4], ARGV[3]) end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], doc)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[6])
if ARGV[4] ~= '' then add_load(KEYS[3], ARGV[4], -1) end
add_load(KEYS[3], ARGV[5], 1)
return doc
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

// adjustReputationScript adds delta and clamps. KEYS: 1 workers:reputation.
// ARGV: 1 id, 2 delta, 3 initial, 4 floor, 5 ceiling. Returns the new
// value as a string.
var adjustReputationScript = goredis.NewScript(`
local r = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or ARGV[3]) + tonumber(ARGV[2])
r = math.min(math.max(r, tonumber(ARGV[4])), tonumber(ARGV[5]))
local s = string.format('%.17g', r)
redis.call('HSET', KEYS[1], ARGV[1], s)
return s
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
		"commit": commitScript, "purge_index": purgeIndexScript,
		"push_ready": pushReadyScript, "take_ready": takeReadyScript, "extend_ready": extendReadyScript, "done_ready": doneReadyScript,
		"peek_tasks": peekTasksScript, "claim_task": claimTaskScript, "release_task": releaseTaskScript,
		"due_timers": dueTimersScript, "put_worker": putWorkerScript, "touch_worker": touchWorkerScript,
		"expired_workers": expiredWorkersScript, "adjust_reputation": adjustReputationScript,
		"incr": incrScript, "incr_if_below": incrIfBelowScript,
		"acquire_lock": acquireLockScript, "refresh_lock": refreshLockScript, "release_lock": releaseLockScript,
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
