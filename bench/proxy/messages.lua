-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/proxy/run.sh: POST a realistic non-streaming Messages
-- request with the bearer token from $TOKEN, and print one parseable line:
--   result rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… requests=… non2xx=… socket_errors=…
--          connect=… read=… write=… timeout=…
-- (wrk counts any status above 399 in errors.status; a run in which nothing was
-- answered reports the run's length as every latency, and one timeout.)
wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
wrk.body = '{"model":"claude-3-5-haiku-latest","max_tokens":256,'
  .. '"system":"You are a concise assistant for a platform team.",'
  .. '"messages":[{"role":"user","content":"In two sentences, what does a reverse proxy do '
  .. 'and why would a team put one in front of an API?"}]}'

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local p50, p90, p99, max = latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  local timeout = e.timeout
  if summary.requests == 0 then
    -- Nothing answered in the whole run: every latency is at least the run's
    -- length (not wrk's empty 0), and the run counts as a timeout.
    p50, p90, p99, max = summary.duration, summary.duration, summary.duration, summary.duration
    timeout = timeout + 1
  end
  io.write(string.format(
    "result rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d socket_errors=%d"
      .. " connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / seconds, p50 / 1000, p90 / 1000, p99 / 1000, max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + timeout, e.connect, e.read, e.write, timeout))
end
