-- wrk script for bench/gateway.py: the gateway's authorize -> settle loop, or /healthz.
--
-- Configured from the environment (bench/gateway.py sets it):
--   BENCH_MODE      "healthz", "many" (a random subject eng<i>-key per authorize) or "hot"
--   BENCH_TOKEN     the gateway token (Authorization: Bearer ...)
--   BENCH_POOLS     how many eng<i>-key subjects exist (mode "many")
--   BENCH_SUBJECT   the subject of mode "hot" (default "ci-bot")
--   BENCH_RUN       a prefix that makes idempotency keys unique across runs...
--   BENCH_CASE      ...and cases
--
-- Each wrk thread keeps a queue of authorization ids: response() pushes the id of every 201,
-- request() pops one and sends its settle, or sends a new authorize when the queue is empty.
-- So about half the requests are authorizes and half settles. Statuses are counted per thread
-- and printed by done() as one line per counter, "STATUS <name> <count>", for the driver.

local counter = 1
local threads = {}

local AUTHORIZE_PATH = "/api/v1/authorizations"
local SETTLE_BODY = '{"input_tokens": 1800, "cached_input_tokens": 1000, "output_tokens": 300}'

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   mode = os.getenv("BENCH_MODE") or "healthz"
   pools = tonumber(os.getenv("BENCH_POOLS") or "1")
   subject = os.getenv("BENCH_SUBJECT") or "ci-bot"
   prefix = (os.getenv("BENCH_RUN") or "run") .. "-" .. (os.getenv("BENCH_CASE") or mode)
      .. "-t" .. id .. "-"
   headers = {
      ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or ""),
      ["Content-Type"] = "application/json",
   }
   math.randomseed(os.time() * 100 + id)
   queue, head, tail = {}, 1, 0
   sent = 0
   authorizes, settles = 0, 0
   s200, s201, s402, other = 0, 0, 0, 0
   no_id = 0
end

function request()
   if mode == "healthz" then
      return wrk.format("GET", "/healthz")
   end
   if head <= tail then
      local authorization = queue[head]
      queue[head] = nil
      head = head + 1
      settles = settles + 1
      return wrk.format("POST", AUTHORIZE_PATH .. "/" .. authorization .. "/settle", headers,
                        SETTLE_BODY)
   end
   sent = sent + 1
   authorizes = authorizes + 1
   local who = subject
   if mode == "many" then
      who = "eng" .. math.random(1, pools) .. "-key"
   end
   local body = '{"idempotency_key": "' .. prefix .. sent .. '", "subject": "' .. who
      .. '", "model": "claude-sonnet-4-5", "input_tokens": 2000, "max_output_tokens": 500}'
   return wrk.format("POST", AUTHORIZE_PATH, headers, body)
end

function response(status, response_headers, body)
   if status == 200 then
      s200 = s200 + 1
   elseif status == 201 then
      s201 = s201 + 1
      local authorization = string.match(body, '"id"%s*:%s*"([^"]+)"')
      if authorization then
         tail = tail + 1
         queue[tail] = authorization
      else
         no_id = no_id + 1
      end
   elseif status == 402 then
      s402 = s402 + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local totals = {authorizes = 0, settles = 0, s200 = 0, s201 = 0, s402 = 0, other = 0,
                   no_id = 0, queued = 0}
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         if name ~= "queued" then
            totals[name] = totals[name] + (thread:get(name) or 0)
         end
      end
      totals.queued = totals.queued + (thread:get("tail") or 0) - (thread:get("head") or 1) + 1
   end
   for name, value in pairs(totals) do
      io.write(string.format("STATUS %s %d\n", name, value))
   end
end
