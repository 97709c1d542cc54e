/**
 * The Redis twin of lib/ratelimit/algorithms: one script decides a request
 * against all of its limits atomically (check every limit, then write only if
 * the request is admitted), in one round trip. The arithmetic mirrors the
 * TypeScript functions operation for operation, so both give the same verdicts
 * (tests run the same vectors against both). States are strings of numbers
 * written with %.17g, which round-trips a double exactly; sliding logs are
 * sorted sets. Every key gets the TTL after which its state is empty.
 *
 * KEYS: one per limit.
 * ARGV: now, nonce (unique per request), then six per limit: kind, cost,
 *       shadow (1/0), and three parameters:
 *   tb  token bucket      rate, perMs, burst
 *   lp  leaky (police)    rate, perMs, capacity
 *   ls  leaky (shape)     rate, perMs, capacity
 *   fw  fixed window      start, end, limit
 *   sw  sliding window    perMs, limit, -
 *   sl  sliding log       perMs, limit, -
 * Returns five integers per limit: allowed (1/0), remaining, resetMs,
 * retryAfterMs, delayMs.
 */
export const LIMITER_SCRIPT = `
local now = tonumber(ARGV[1])
local nonce = ARGV[2]

local function fields(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  local t = {}
  for x in string.gmatch(v, '%S+') do t[#t + 1] = tonumber(x) end
  return t
end

local function encode(a, b, c)
  local s = string.format('%.17g %.17g', a, b)
  if c then s = s .. string.format(' %.17g', c) end
  return s
end

local function token_bucket(key, cost, rate, per, burst)
  local capacity = burst * per
  local units, at = capacity, now
  local s = fields(key)
  if s then
    at = math.max(now, s[2])
    units = math.min(capacity, s[1] + math.max(0, now - s[2]) * rate)
  end
  local needed = cost * per
  local ok = units >= needed
  if ok then units = units - needed end
  local retry = 0
  if not ok then retry = math.ceil((needed - units) / rate) end
  return ok, math.floor(units / per), math.ceil((capacity - units) / rate), retry, 0,
    encode(units, at)
end

local function leaky_bucket(key, cost, rate, per, capacity, shaping)
  local full = capacity * per
  local level, at = 0, now
  local s = fields(key)
  if s then
    at = math.max(now, s[2])
    level = math.max(0, s[1] - math.max(0, now - s[2]) * rate)
  end
  local poured = cost * per
  local ok = level + poured <= full
  local delay, retry = 0, 0
  if ok and shaping then delay = math.ceil(at - now + level / rate) end
  if not ok then retry = math.ceil((level + poured - full) / rate) end
  if ok then level = level + poured end
  return ok, math.floor((full - level) / per), math.ceil(level / rate), retry, delay,
    encode(level, at)
end

local function fixed_window(key, cost, start, stop, limit)
  local count = 0
  local s = fields(key)
  if s and s[1] > start then start, stop = s[1], s[3] end
  if s and s[1] == start then count = s[2] end
  local ok = count + cost <= limit
  if ok then count = count + cost end
  local retry = 0
  if not ok then retry = stop - now end
  return ok, limit - count, stop - now, retry, 0, encode(start, count, stop)
end

local function sliding_window(key, cost, per, limit)
  local start = now - (now % per)
  local prev, curr = 0, 0
  local s = fields(key)
  if s then
    if s[1] > start then start = s[1] end
    if s[1] == start then
      prev, curr = s[2], s[3]
    elseif s[1] == start - per then
      prev = s[3]
    end
  end
  local elapsed = math.max(0, now - start)
  local carried = prev * (per - elapsed)
  local ok = carried + (curr + cost) * per <= limit * per
  local retry = 0
  if ok then
    curr = curr + cost
  elseif curr + cost <= limit then
    retry = per - math.floor(((limit - curr - cost) * per) / prev) - elapsed
  else
    retry = per + math.max(0, per - math.floor(((limit - cost) * per) / curr)) - elapsed
  end
  local reset = 0
  if curr > 0 then reset = 2 * per - elapsed elseif prev > 0 then reset = per - elapsed end
  local remaining = math.max(0, math.floor((limit * per - carried - curr * per) / per))
  return ok, remaining, reset, retry, 0, encode(start, prev, curr)
end

local function sliding_log(key, cost, per, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
  local live = redis.call('ZCARD', key)
  local ok = live + cost <= limit
  local retry, reset, count = 0, 0, live
  if ok then
    count = live + cost
    reset = per
  else
    local due = redis.call('ZRANGE', key, live + cost - limit - 1, live + cost - limit - 1,
      'WITHSCORES')
    retry = tonumber(due[2]) + per - now
    if live > 0 then
      local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      reset = tonumber(newest[2]) + per - now
    end
  end
  return ok, limit - count, reset, retry, 0, nil
end

local out, writes, admit = {}, {}, true
local a = 3
for i = 1, #KEYS do
  local kind, cost, shadow = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2] == '1'
  local p1, p2, p3 = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  local key = KEYS[i]
  local ok, remaining, reset, retry, delay, state
  if kind == 'tb' then
    ok, remaining, reset, retry, delay, state = token_bucket(key, cost, p1, p2, p3)
  elseif kind == 'lp' or kind == 'ls' then
    ok, remaining, reset, retry, delay, state = leaky_bucket(key, cost, p1, p2, p3, kind == 'ls')
  elseif kind == 'fw' then
    ok, remaining, reset, retry, delay, state = fixed_window(key, cost, p1, p2, p3)
  elseif kind == 'sw' then
    ok, remaining, reset, retry, delay, state = sliding_window(key, cost, p1, p2)
  elseif kind == 'sl' then
    ok, remaining, reset, retry, delay, state = sliding_log(key, cost, p1, p2)
  else
    return redis.error_reply('unknown limiter kind ' .. tostring(kind))
  end
  if not ok and not shadow then admit = false end
  if ok then writes[i] = { kind = kind, cost = cost, per = p1, state = state, ttl = reset } end
  local n = #out
  out[n + 1] = ok and 1 or 0
  out[n + 2] = remaining
  out[n + 3] = reset
  out[n + 4] = retry
  out[n + 5] = delay
end

if admit then
  for i = 1, #KEYS do
    local w = writes[i]
    if w then
      local key = KEYS[i]
      if w.kind == 'sl' then
        for j = 1, w.cost do redis.call('ZADD', key, now, nonce .. ':' .. i .. ':' .. j) end
        redis.call('PEXPIRE', key, w.per)
      elseif w.ttl > 0 then
        redis.call('SET', key, w.state, 'PX', w.ttl)
      else
        redis.call('DEL', key)
      end
    end
  end
end
return out
`;
