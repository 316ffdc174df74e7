# SPDX-License-Identifier: Apache-2.0
"""Streaming load for serve-local, driven by streams.sh.

  streams.py upstream PORT_FILE EVENTS INTERVAL [PROCS]
      A Messages upstream on a free loopback port (written to PORT_FILE), served by PROCS
      processes (default 1) on SO_REUSEPORT sockets. "stream": true requests get Anthropic's
      SSE event sequence with EVENTS text deltas INTERVAL seconds apart; every event carries
      the time it was sent ("bench_sent_ns"). Other requests get a canned JSON reply at once.
  streams.py client URL TOKEN STREAMS SPREAD TIMEOUT [PROCS [SOURCES]]
      Opens STREAMS streaming requests to URL, spread evenly over SPREAD seconds (a stream
      not done TIMEOUT seconds after it opened counts as failed), from PROCS
      processes (default 1; stream j belongs to process j % PROCS) and from SOURCES loopback
      source addresses (default 1: 127.0.0.1; else 127.0.0.2 … round robin), reads every
      event, and prints one JSON summary: streams completed, first-event and per-event
      delays (arrival minus the upstream's send time, ms).

Both sides are asyncio on epoll (no thread per stream), and raise their own soft open-file
limit to the hard one. Several processes keep one event loop's own queueing out of the
delays at thousands of streams; the reference run straight to the upstream has the same.
"""
import asyncio
import json
import multiprocessing
import os
import re
import resource
import signal
import socket
import sys
import time

MODEL = "claude-3-5-haiku-20241022"
CANNED = json.dumps({
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "text", "text": "Hello! A reverse proxy forwards client requests."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens": 42}}).encode()
SENT = re.compile(rb'"bench_sent_ns":\s*(\d+)')


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


async def serve(sock, events, interval):
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, events, interval), sock=sock)
    await server.serve_forever()


def upstream_process(sock, events, interval):
    raise_file_limit()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    asyncio.run(serve(sock, events, interval))


def stop_on_term(*_):
    sys.exit(0)  # SystemExit runs multiprocessing's exit handler, which ends the daemon children


def upstream(port_file, events, interval, procs=1):
    """PROCS processes, each accepting on its own SO_REUSEPORT socket of one port."""
    signal.signal(signal.SIGTERM, stop_on_term)
    socks, port = [], 0
    for _ in range(procs):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)
        port = sock.getsockname()[1]
        socks.append(sock)
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=upstream_process, args=(s, events, interval), daemon=True) for s in socks]
    for child in children:
        child.start()
    with open(port_file + ".tmp", "w") as out:
        out.write(str(port))
    os.rename(port_file + ".tmp", port_file)
    for child in children:
        child.join()


async def read_chunk(reader):
    """One chunk of a chunked body; b"" at its end."""
    size = int((await reader.readline()).split(b";")[0], 16)
    data = await reader.readexactly(size) if size else b""
    await reader.readexactly(2)
    return data


async def one_stream(host, port, source, token):
    """One streaming request; its arrival-minus-send delays (ms), first event first."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=source)
    try:
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
                delays.append((now - int(SENT.search(event).group(1))) / 1e6)
                stopped = stopped or b'"message_stop"' in event
        if not stopped:
            raise RuntimeError("stream ended without message_stop")
        return delays
    finally:
        writer.close()


async def scheduled(start, seconds, coroutine):
    await asyncio.sleep(max(0.0, start + seconds - time.monotonic()))
    return await coroutine


async def client_part(url, token, streams, spread, procs, index, sources, start, limit):
    host, port = url.removeprefix("http://").split(":")
    mine = range(index, streams, procs)
    outcomes = await asyncio.gather(
        *(scheduled(start, spread * j / streams,
                    asyncio.wait_for(one_stream(host, int(port), (f"127.0.0.{2 + j % sources}", 0)
                                                if sources > 1 else None, token), limit))
          for j in mine),
        return_exceptions=True)
    return ([o for o in outcomes if not isinstance(o, BaseException)],
            [repr(o) for o in outcomes if isinstance(o, BaseException)])


def client_process(pipe, *args):
    raise_file_limit()
    pipe.send(asyncio.run(client_part(*args)))
    pipe.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def client(url, token, streams, spread, limit, procs=1, sources=1):
    """Runs the client processes, merges their delays and prints the JSON summary."""
    fork = multiprocessing.get_context("fork")
    start = time.monotonic() + 0.5  # CLOCK_MONOTONIC is one clock for every process
    parts = []
    for index in range(procs):
        ours, theirs = fork.Pipe(duplex=False)
        child = fork.Process(target=client_process, daemon=True,
                             args=(theirs, url, token, streams, spread, procs, index, sources, start, limit))
        child.start()
        theirs.close()
        parts.append((child, ours))
    result, errors = [], []
    for child, pipe in parts:
        try:
            done, failed = pipe.recv()
        except EOFError:
            done, failed = [], [f"client process {child.pid} died"]
        result += done
        errors += failed
        child.join()
    first = [d[0] for d in result]
    every = [x for d in result for x in d]
    print(json.dumps({
        "streams": streams, "completed": len(result), "failed": streams - len(result), "errors": errors[:3],
        "seconds": round(time.monotonic() - start, 1), "procs": procs, "sources": sources,
        "first_event_ms": {"p50": percentile(first, 50), "p99": percentile(first, 99), "max": max(first, default=0)},
        "first_over_50ms": sum(1 for x in first if x > 50),
        "event_ms": {"p50": percentile(every, 50), "p99": percentile(every, 99), "max": max(every, default=0)},
        "events": len(every)}))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "upstream" and len(args) in (3, 4):
        upstream(args[0], int(args[1]), float(args[2]), *(int(a) for a in args[3:]))
    elif mode == "client" and len(args) in (5, 6, 7):
        client(args[0], args[1], int(args[2]), float(args[3]), float(args[4]), *(int(a) for a in args[5:]))
    else:
        sys.exit(f"usage: {sys.argv[0]} upstream PORT_FILE EVENTS INTERVAL [PROCS]"
                 " | client URL TOKEN STREAMS SPREAD TIMEOUT [PROCS [SOURCES]]")


if __name__ == "__main__":
    main()
