-- wrk script: every request POSTs a distinct approved report (about 1 KB, 20
-- counters and 2 stacks) to /upload/<WEEK>. Reports are named by their week and X,
-- so a repeated body would be answered "already stored" without a write; each wrk
-- thread numbers its requests instead, and X = (thread * 2^32 + n) / 2^52 is
-- distinct for every request of the run. WEEK comes from the environment.

local week = os.getenv("WEEK")
local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("id", threads)
end

local counters = {}
for i = 0, 19 do
   counters[#counters + 1] = string.format('"mytool/flag:%s": %d', string.char(97 + i), 97 + i)
end
local head = '{"Week": "' .. week .. '", "X": '
local tail = ', "Programs": [{"Program": "mytool", "Version": "1.0.0", "Toolchain": "1.95.0", '
   .. '"OS": "linux", "Arch": "x86_64", "Counters": {' .. table.concat(counters, ", ") .. '}, '
   .. '"Stacks": {"mytool/bug\\nmytool::parse+0x1f\\nmytool::main+0x2a": 2, '
   .. '"mytool/bug\\nmytool::render+0x44": 1}}]}'
local path = "/upload/" .. week
local headers = { ["Content-Type"] = "application/json" }
local n = 0

function request()
   n = n + 1
   -- %.17g round-trips a double exactly.
   local x = string.format("%.17g", (id * 4294967296 + n) / 4503599627370496)
   return wrk.format("POST", path, headers, head .. x .. tail)
end

function done(summary, latency, requests)
   io.write(string.format("RESULT requests=%d duration_us=%d errors_connect=%d errors_read=%d "
      .. "errors_write=%d errors_status=%d errors_timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.status, summary.errors.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
