/**
 * The Redis twin of lib/ratelimit/algorithms: one script decides a request
 * against all of its limits atomically (check every limit, then write only if
 * the request is admitted), in one round trip. One call may carry several
 * requests' decisions (those that queued while earlier calls were in flight);
 * each is decided on its own, in order, so a later one sees an earlier one's
 * writes. The arithmetic mirrors the
 * TypeScript functions operation for operation, so both give the same verdicts
 * (tests run the same vectors against both). States are doubles packed with
 * `struct` (exact, and cheaper than formatting text); sliding logs are sorted
 * sets. Every key gets the TTL after which its state is empty. The script is
 * one flat loop on purpose: local functions would be new closures on every call.
 *
 * KEYS: one per limit, the decisions' limits one after the other.
 * ARGV: the number of decisions, a nonce (unique per call), then per decision:
 *       now, its number of limits, and six per limit: kind, cost, shadow (1/0),
 *       and three parameters:
 *   tb  token bucket      rate, perMs, burst
 *   lp  leaky (police)    rate, perMs, capacity
 *   ls  leaky (shape)     rate, perMs, capacity
 *   fw  fixed window      start, end, limit
 *   sw  sliding window    perMs, limit, -
 *   sl  sliding log       perMs, limit, -
 * Returns five integers per limit, in the same order: allowed (1/0), remaining,
 * resetMs, retryAfterMs, delayMs.
 */
export const LIMITER_SCRIPT = `
local decisions, nonce = tonumber(ARGV[1]), ARGV[2]
local out = {}
local a, k = 3, 0
for d = 1, decisions do
  local now, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local first = a
  local states, ttls = {}, {}
  local admit = true
  for i = 1, m do
    local key = KEYS[k + i]
    local kind, cost, shadow = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2] == '1'
    local p1, p2, p3 = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
    a = a + 6
    local ok, remaining, reset, retry, delay, state = false, 0, 0, 0, 0, nil

    if kind == 'sl' then
      local per, limit = p1, p2
      -- Expired entries go only with an admission (below), as in the TypeScript log: a
      -- clock that steps back finds the ones a refusal left.
      local since = '(' .. string.format('%.17g', now - per)
      local live = redis.call('ZCOUNT', key, since, '+inf')
      ok = live + cost <= limit
      local count = live
      -- After a clock step back the newest entry is ahead of now: the log lives until it expires.
      local newest = now
      if live > 0 then newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]) end
      if ok then
        count = live + cost
        reset = math.max(newest, now) + per - now
      else
        reset = newest + per - now
        local rank = live + cost - limit - 1
        local due = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES', 'LIMIT', rank, 1)
        retry = tonumber(due[2]) + per - now
      end
      remaining = math.max(0, limit - count)

    else
      local raw = redis.call('GET', key)
      if kind == 'tb' then
        local rate, per = p1, p2
        local capacity = p3 * per
        local units, at = capacity, now
        if raw and #raw == 16 then
          local u, t = struct.unpack('dd', raw)
          at = math.max(now, t)
          units = math.min(capacity, u + math.max(0, now - t) * rate)
        end
        local needed = cost * per
        local ahead = at - now
        ok = units >= needed
        if ok then units = units - needed else retry = ahead + math.ceil((needed - units) / rate) end
        remaining = math.floor(units / per)
        reset = ahead + math.ceil((capacity - units) / rate)
        state = struct.pack('dd', units, at)

      elseif kind == 'lp' or kind == 'ls' then
        local rate, per = p1, p2
        local full = p3 * per
        local level, at = 0, now
        if raw and #raw == 16 then
          local l, t = struct.unpack('dd', raw)
          at = math.max(now, t)
          level = math.max(0, l - math.max(0, now - t) * rate)
        end
        local poured = cost * per
        local ahead = at - now
        ok = level + poured <= full
        if ok and kind == 'ls' then delay = math.ceil(ahead + level / rate) end
        if ok then
          level = level + poured
        else
          retry = ahead + math.ceil((level + poured - full) / rate)
        end
        remaining = math.max(0, math.floor((full - level) / per))
        reset = ahead + math.ceil(level / rate)
        state = struct.pack('dd', level, at)

      elseif kind == 'fw' then
        local start, stop, limit = p1, p2, p3
        local count = 0
        if raw and #raw == 24 then
          local s, c, e = struct.unpack('ddd', raw)
          -- A window ahead of our clock was opened by a peer whose clock runs ahead: join it.
          if s > start then start, stop = s, e end
          if s == start then count = c end
        end
        ok = count + cost <= limit
        if ok then count = count + cost else retry = stop - now end
        remaining = math.max(0, limit - count)
        reset = stop - now
        state = struct.pack('ddd', start, count, stop)

      elseif kind == 'sw' then
        local per, limit = p1, p2
        local start = now - (now % per)
        local prev, curr = 0, 0
        if raw and #raw == 24 then
          local s, p, c = struct.unpack('ddd', raw)
          if s > start then start = s end
          if s == start then
            prev, curr = p, c
          elseif s == start - per then
            prev = c
          end
        end
        local elapsed = now - start
        local carried = prev * (per - math.max(0, elapsed))
        ok = carried + (curr + cost) * per <= limit * per
        if ok then
          curr = curr + cost
        elseif curr + cost <= limit then
          retry = per - math.floor(((limit - curr - cost) * per) / prev) - elapsed
        else
          retry = per + math.max(0, per - math.floor(((limit - cost) * per) / curr)) - elapsed
        end
        if curr > 0 then reset = 2 * per - elapsed elseif prev > 0 then reset = per - elapsed end
        remaining = math.max(0, math.floor((limit * per - carried - curr * per) / per))
        state = struct.pack('ddd', start, prev, curr)

      else
        return redis.error_reply('unknown limiter kind ' .. tostring(kind))
      end
    end

    if not ok and not shadow then admit = false end
    if ok then
      states[i] = state or false
      ttls[i] = reset
    end
    local o = #out
    out[o + 1] = ok and 1 or 0
    out[o + 2] = remaining
    out[o + 3] = reset
    out[o + 4] = retry
    out[o + 5] = delay
  end

  if admit then
    local b = first
    for i = 1, m do
      local state = states[i]
      if state ~= nil then
        local key = KEYS[k + i]
        if state == false then
          local cost, per = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 3])
          redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
          for j = 1, cost do
            redis.call('ZADD', key, now, nonce .. ':' .. d .. ':' .. i .. ':' .. j)
          end
          redis.call('PEXPIRE', key, ttls[i])
        elseif ttls[i] > 0 then
          redis.call('SET', key, state, 'PX', ttls[i])
        else
          redis.call('DEL', key)
        end
      end
      b = b + 6
    end
  end
  k = k + m
end
return out
`;
