-- wrk script of the end-to-end test: a mix of fast GETs, slow GETs (200-1500 ms) and
-- non-idempotent POSTs, each with a unique X-Request-Id, counting every status.
--
-- Environment:
--   E2E_ID_PREFIX   prefix of the request ids (unique per run)          [r]
--   E2E_FAST_PCT    percent of GET /                                     [80]
--   E2E_SLOW_PCT    percent of GET /slow?ms=200..1500 (the rest: POST)   [10]
--   E2E_THINK_MS    delay before each request on a connection (ms)       [5]
--   E2E_MAX_PER_THREAD  stop a thread after this many responses (0: no cap) [0]
--   E2E_WRK_OUT     where done() writes its JSON summary                 [required]
--   E2E_QUIET_FILE  once this file exists, send only fast GETs (the harness creates it
--                   before stopping wrk, so that few requests are abandoned in flight)

local prefix = os.getenv("E2E_ID_PREFIX") or "r"
local fast_pct = tonumber(os.getenv("E2E_FAST_PCT") or "80")
local slow_pct = tonumber(os.getenv("E2E_SLOW_PCT") or "10")
local think_ms = tonumber(os.getenv("E2E_THINK_MS") or "5")
local max_per_thread = tonumber(os.getenv("E2E_MAX_PER_THREAD") or "0")
local out = os.getenv("E2E_WRK_OUT")
local quiet_file = os.getenv("E2E_QUIET_FILE")
local body = '{"job":"e2e","payload":"' .. string.rep("x", 64) .. '"}'

local threads = {}
local next_tid = 1

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

function init(args)
   sent = 0
   quiet = false
   responses = 0
   non2xx = 0
   kinds = { fast = 0, slow = 0, post = 0 }
   statuses = {}
   bad = {}
   math.randomseed(os.time() + tid * 7919)
end

function delay()
   return think_ms
end

function request()
   sent = sent + 1
   local headers = { ["X-Request-Id"] = prefix .. "-" .. tid .. "-" .. sent }
   local r = math.random(100)
   if not quiet and quiet_file and sent % 8 == 0 then
      local f = io.open(quiet_file, "r")
      if f then
         f:close()
         quiet = true
      end
   end
   if quiet then
      r = 0
   end
   if r <= fast_pct then
      kinds.fast = kinds.fast + 1
      return wrk.format("GET", "/", headers)
   elseif r <= fast_pct + slow_pct then
      kinds.slow = kinds.slow + 1
      return wrk.format("GET", "/slow?ms=" .. math.random(200, 1500), headers)
   else
      kinds.post = kinds.post + 1
      headers["Content-Type"] = "application/json"
      return wrk.format("POST", "/work?ms=20", headers, body)
   end
end

function response(status, headers, body)
   responses = responses + 1
   statuses[status] = (statuses[status] or 0) + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if #bad < 50 then
         local id = headers["x-request-id"] or headers["X-Request-Id"] or "?"
         table.insert(bad, status .. ":" .. id)
      end
   end
   if max_per_thread > 0 and responses >= max_per_thread then
      wrk.thread:stop()
   end
end

local function encode_statuses(t)
   -- "200=5,503=1" (plain strings cross wrk's thread boundary safely)
   local parts = {}
   for k, v in pairs(t) do table.insert(parts, k .. "=" .. v) end
   return table.concat(parts, ",")
end

local function merge(into, s)
   for k, v in string.gmatch(s or "", "(%d+)=(%d+)") do
      into[k] = (into[k] or 0) + tonumber(v)
   end
end

function done(summary, latency, requests)
   local total = { sent = 0, responses = 0, non2xx = 0, fast = 0, slow = 0, post = 0 }
   local st = {}
   local bad_all = {}
   for _, t in ipairs(threads) do
      total.sent = total.sent + (t:get("sent") or 0)
      total.responses = total.responses + (t:get("responses") or 0)
      total.non2xx = total.non2xx + (t:get("non2xx") or 0)
      local k = t:get("kinds") or {}
      total.fast = total.fast + (k.fast or 0)
      total.slow = total.slow + (k.slow or 0)
      total.post = total.post + (k.post or 0)
      merge(st, encode_statuses(t:get("statuses") or {}))
      for _, b in ipairs(t:get("bad") or {}) do table.insert(bad_all, '"' .. b .. '"') end
   end
   local sparts = {}
   for k, v in pairs(st) do table.insert(sparts, '"' .. k .. '":' .. v) end
   local e = summary.errors
   local json = string.format(
      '{"requests":%d,"responses":%d,"sent":%d,"non2xx":%d,' ..
      '"mix":{"fast":%d,"slow":%d,"post":%d},"statuses":{%s},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"duration_s":%.3f,"bytes":%d,"latency_ms":{"p50":%.1f,"p99":%.1f,"max":%.1f},"bad_sample":[%s]}\n',
      summary.requests, total.responses, total.sent, total.non2xx,
      total.fast, total.slow, total.post, table.concat(sparts, ","),
      e.connect, e.read, e.write, e.status, e.timeout,
      summary.duration / 1e6, summary.bytes,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      table.concat(bad_all, ","))
   if out then
      local f = assert(io.open(out, "w"))
      f:write(json)
      f:close()
   else
      io.write(json)
   end
end
