-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/proxy/run.sh: POST a realistic non-streaming Messages
-- request with the bearer token from $TOKEN, and print one parseable line:
--   result rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… requests=… non2xx=… socket_errors=…
--          connect=… read=… write=… timeout=…
-- (wrk counts any status above 399 in errors.status.)
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
  io.write(string.format(
    "result rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d socket_errors=%d"
      .. " connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout))
end
