-- wrk script: POST /v1/purchases, a new body for every request.
--
--   wrk -t1 -c64 -d15s -s purchase.lua http://HOST:PORT/v1/purchases -- KEY RUN CONTACTS [SAMPLE]
--
-- KEY is sent as the bearer token, RUN makes the external references of this run unique,
-- CONTACTS is the number of contacts (codes c0 .. cN-1). With SAMPLE, one body built the same
-- way is written to that file (not sent), for the caller to check the shape against the server.
--
-- A body: a random contact by contact code, a unique external_reference, one of two TAP codes,
-- classification grocery (70 %) or other, a payment brand, three lines (one of five families,
-- one of ten SKUs each, quantity 1 to 3, unit price 0.00 to 19.99, tax rate 0.19 (80 %) or
-- tax amount 0.10) and, for 30 % of purchases, "spend": {"amount": "all"}.
--
-- `done` prints one line starting with COMPARE and a JSON object for the caller to read.

local families = {"dairy", "bakery", "produce", "drinks", "household"}
local upper = {"DAIRY", "BAKERY", "PRODUCE", "DRINKS", "HOUSEHOLD"}

local next_thread = 0
function setup(thread)
   thread:set("thread_id", next_thread)
   next_thread = next_thread + 1
end

local headers, run, contacts
local counter = 0

local function line()
   local f = math.random(1, 5)
   local tax
   if math.random(1, 10) <= 8 then
      tax = '"tax_rate":"0.19"'
   else
      tax = '"tax_amount":"0.10"'
   end
   return string.format(
      '{"sku":"SKU-%s-%d","family":"%s","quantity":"%d","unit_price":"%d.%02d",%s}',
      upper[f], math.random(0, 9), families[f], math.random(1, 3),
      math.random(0, 19), math.random(0, 99), tax)
end

local function body()
   counter = counter + 1
   local classification = "other"
   if math.random(1, 10) <= 7 then
      classification = "grocery"
   end
   local spend = ""
   if math.random(1, 10) <= 3 then
      spend = ',"spend":{"amount":"all"}'
   end
   return string.format(
      '{"identity":{"contact_code":"c%d"},"external_reference":"w-%s-%d-%d",' ..
      '"tap_code":"T-%d","classification":"%s","payment_medium":{"brand":"visa"},' ..
      '"lines":[%s,%s,%s]%s}',
      math.random(0, contacts - 1), run, thread_id or 0, counter,
      math.random(1, 2), classification, line(), line(), line(), spend)
end

function init(args)
   headers = {
      ["Authorization"] = "Bearer " .. (args[1] or "none"),
      ["Content-Type"] = "application/json",
   }
   run = args[2] or tostring(os.time())
   contacts = tonumber(args[3]) or 10000
   math.randomseed(os.time() + 7919 * ((thread_id or 0) + 1))
   if args[4] and args[4] ~= "" then
      local file = assert(io.open(args[4], "w"))
      file:write(body())
      file:close()
   end
end

function request()
   return wrk.format("POST", nil, headers, body())
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'COMPARE {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
      '"p50_us":%d,"p99_us":%d}\n',
      summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
