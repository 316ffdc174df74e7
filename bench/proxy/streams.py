# SPDX-License-Identifier: Apache-2.0
"""Streaming load for serve-local, driven by streams.sh.

  streams.py upstream PORT_FILE EVENTS INTERVAL
      A Messages upstream on a free loopback port (written to PORT_FILE).
      "stream": true requests get Anthropic's SSE event sequence with EVENTS
      text deltas INTERVAL seconds apart; every event carries the time it was
      sent ("bench_sent_ns"). Other requests get a canned JSON reply at once.
  streams.py client URL TOKEN STREAMS PID SPREAD
      Opens STREAMS streaming requests to URL (spread over SPREAD seconds),
      reads every event, samples PID's resident memory (PID 0: none), and
      prints one JSON summary: streams completed, first-event and per-event delays (arrival
      minus the upstream's send time, ms) and the peak RSS (MiB).
"""
import asyncio
import json
import os
import sys
import time

MODEL = "claude-3-5-haiku-20241022"
CANNED = json.dumps({
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "text", "text": "Hello! A reverse proxy forwards client requests."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 42}}).encode()


def parse_head(head):
    """The first line of an HTTP head and its headers (lower-case names)."""
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers


async def read_head(reader):
    """The request's headers, or None at EOF."""
    try:
        return parse_head(await reader.readuntil(b"\r\n\r\n"))[1]
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def sse(event, data):
    """One SSE event as an HTTP chunk, stamped with the time it leaves."""
    data["bench_sent_ns"] = time.time_ns()
    payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(payload), payload)


async def trickle(writer, events, interval):
    """Anthropic's event sequence, text deltas `interval` seconds apart."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                 b"request-id: req_bench_stream\r\ntransfer-encoding: chunked\r\n\r\n")
    start = {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0,
                                       "cache_read_input_tokens": 0, "output_tokens": 1}}}
    writer.write(sse("message_start", start))
    writer.write(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}}))
    await writer.drain()
    for i in range(events):
        await asyncio.sleep(interval)
        writer.write(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": f"word{i} "}}))
        await writer.drain()
    writer.write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    writer.write(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                       "usage": {"output_tokens": events}}))
    writer.write(sse("message_stop", {"type": "message_stop"}) + b"0\r\n\r\n")
    await writer.drain()


async def serve_connection(reader, writer, events, interval):
    try:
        while (headers := await read_head(reader)) is not None:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if b'"stream":true' in body.replace(b" ", b""):
                await trickle(writer, events, interval)
                continue
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"request-id: req_bench\r\ncontent-length: %d\r\n\r\n%s" % (len(CANNED), CANNED))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def upstream(port_file, events, interval):
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, events, interval),
                                        "127.0.0.1", 0, backlog=4096)
    with open(port_file + ".tmp", "w") as out:
        out.write(str(server.sockets[0].getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    await server.serve_forever()


async def read_chunk(reader):
    """One chunk of a chunked body; b"" at its end."""
    size = int((await reader.readline()).split(b";")[0], 16)
    data = await reader.readexactly(size) if size else b""
    await reader.readexactly(2)
    return data


async def one_stream(url_host, url_port, token, result):
    """One streaming request; appends arrival-minus-send delays (ms) to `result`."""
    reader, writer = await asyncio.open_connection(url_host, url_port)
    body = json.dumps({"model": "claude-3-5-haiku-latest", "max_tokens": 256, "stream": True,
                       "messages": [{"role": "user", "content": "Tell me a slow story."}]}).encode()
    writer.write(b"POST /v1/messages HTTP/1.1\r\nHost: bench\r\ncontent-type: application/json\r\n"
                 b"anthropic-version: 2023-06-01\r\nauthorization: Bearer %s\r\n"
                 b"content-length: %d\r\n\r\n%s" % (token.encode(), len(body), body))
    await writer.drain()
    first, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    status = first.split()[1]
    if status != "200" or "chunked" not in headers.get("transfer-encoding", ""):
        raise RuntimeError(f"status {status}, headers {headers}")
    buffer, delays, stopped = b"", [], False
    while chunk := await read_chunk(reader):
        now = time.time_ns()
        buffer += chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            data = json.loads(event.split(b"data: ", 1)[1])
            delays.append((now - data["bench_sent_ns"]) / 1e6)
            stopped = stopped or data["type"] == "message_stop"
    writer.close()
    if not stopped:
        raise RuntimeError("stream ended without message_stop")
    result.append(delays)


def rss_mib(pid):
    if pid == 0:
        return 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def sample_rss(pid, peak):
    while True:
        peak[0] = max(peak[0], rss_mib(pid))
        await asyncio.sleep(0.2)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


async def delayed(seconds, coroutine):
    await asyncio.sleep(seconds)
    return await coroutine


async def client(url, token, streams, pid, spread):
    host, port = url.removeprefix("http://").split(":")
    peak = [rss_mib(pid)]
    idle = peak[0]
    sampler = asyncio.create_task(sample_rss(pid, peak))
    result = []
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(delayed(spread * i / streams, one_stream(host, int(port), token, result)) for i in range(streams)),
        return_exceptions=True)
    sampler.cancel()
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    first = [d[0] for d in result]
    every = [x for d in result for x in d]
    print(json.dumps({
        "streams": streams, "completed": len(result), "failed": len(errors), "errors": errors[:3],
        "seconds": round(time.monotonic() - started, 1),
        "first_event_ms": {"p50": percentile(first, 50), "p99": percentile(first, 99), "max": max(first, default=0)},
        "first_over_50ms": sum(1 for x in first if x > 50),
        "event_ms": {"p50": percentile(every, 50), "p99": percentile(every, 99), "max": max(every, default=0)},
        "events": len(every), "rss_idle_mib": round(idle, 1), "rss_peak_mib": round(peak[0], 1)}))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "upstream":
        asyncio.run(upstream(args[0], int(args[1]), float(args[2])))
    elif mode == "client":
        asyncio.run(client(args[0], args[1], int(args[2]), int(args[3]), float(args[4])))
    else:
        sys.exit(f"usage: {sys.argv[0]} upstream PORT_FILE EVENTS INTERVAL | client URL TOKEN STREAMS PID SPREAD")


if __name__ == "__main__":
    main()
