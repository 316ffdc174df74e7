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

Both sides are asyncio protocols on epoll (no thread, and no task woken per event, per stream:
callbacks and timers), and raise their own soft open-file limit to the hard one. Several
processes keep one event loop's own queueing out of the delays at thousands of streams; the
reference run straight to the upstream has the same.
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


def sse(event, data):
    """One SSE event as an HTTP chunk, stamped with the time it leaves."""
    data["bench_sent_ns"] = time.time_ns()
    payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(payload), payload)


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
               b"request-id: req_bench_stream\r\ntransfer-encoding: chunked\r\n\r\n")
MESSAGE_START = {"type": "message_start", "message": {
    "id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL, "content": [],
    "stop_reason": None, "usage": {"input_tokens": 31, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 0, "output_tokens": 1}}}


DELTA = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": '
         b'{"type": "text_delta", "text": "word%d "}, "bench_sent_ns": %d}\n\n')


class Upstream(asyncio.Protocol):
    """One upstream connection: requests in turn; a streaming one is Anthropic's event sequence,
    text deltas INTERVAL seconds apart, written from timer callbacks (no task per stream)."""

    def __init__(self, events, interval):
        self.events, self.interval = events, interval
        self.buffer, self.body_length, self.timer = b"", None, None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.timer:
            self.timer.cancel()

    def data_received(self, data):
        self.buffer += data
        while self.timer is None:  # one request at a time: a stream finishes first
            if self.body_length is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                headers = parse_head(self.buffer[:end])[1]
                self.buffer = self.buffer[end + 4:]
                self.body_length = int(headers.get("content-length", "0"))
            if len(self.buffer) < self.body_length:
                return
            body, self.buffer = self.buffer[:self.body_length], self.buffer[self.body_length:]
            self.body_length = None
            if b'"stream":true' in body.replace(b" ", b""):
                self.start_stream()
            else:
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"request-id: req_bench\r\ncontent-length: %d\r\n\r\n%s"
                                     % (len(CANNED), CANNED))

    def start_stream(self):
        # Three writes (three segments, TCP_NODELAY), as an upstream sending its head, then each event
        # as it has it would: a relay's delayed-ACK or Nagle stall on the first event shows.
        self.transport.write(STREAM_HEAD)
        self.transport.write(sse("message_start", dict(MESSAGE_START)))
        self.transport.write(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                         "content_block": {"type": "text", "text": ""}}))
        self.sent, self.started = 0, asyncio.get_running_loop().time()
        self.timer = asyncio.get_running_loop().call_at(self.started + self.interval, self.tick)

    def tick(self):
        if self.transport.is_closing():
            return
        payload = DELTA % (self.sent, time.time_ns())  # what sse() writes, without json.dumps per event
        self.transport.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.sent += 1
        if self.sent < self.events:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(self.started + (self.sent + 1) * self.interval, self.tick)
            return
        self.transport.write(
            sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            + sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                    "usage": {"output_tokens": self.events}})
            + sse("message_stop", {"type": "message_stop"}) + b"0\r\n\r\n")
        self.timer = None
        if self.buffer:
            self.data_received(b"")


async def serve(sock, events, interval):
    server = await asyncio.get_running_loop().create_server(lambda: Upstream(events, interval), sock=sock)
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


class Stream(asyncio.Protocol):
    """One streaming request: parses the reply as it arrives (callbacks, no task woken per
    event) and resolves `done` with its arrival-minus-send delays (ms), first event first."""

    def __init__(self, request, done):
        self.request, self.done = request, done
        self.buffer, self.events, self.delays = b"", b"", []
        self.head, self.chunk, self.stopped = True, None, False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        self.fail(f"connection closed before the stream's end ({exc!r})")

    def fail(self, why):
        if not self.done.done():
            self.done.set_exception(RuntimeError(why))
        self.transport.close()

    def data_received(self, data):
        now = time.time_ns()
        self.buffer += data
        if self.head:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            first, headers = parse_head(self.buffer[:end])
            self.buffer, self.head = self.buffer[end + 4:], False
            status = first.split()[1]
            if status != "200" or "chunked" not in headers.get("transfer-encoding", ""):
                return self.fail(f"status {status}, headers {headers}")
        while True:
            if self.chunk is None:  # its size line
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return
                self.chunk = int(self.buffer[:end].split(b";")[0], 16)
                self.buffer = self.buffer[end + 2:]
            if len(self.buffer) < self.chunk + 2:
                return
            if self.chunk == 0:
                if not self.stopped:
                    return self.fail("stream ended without message_stop")
                self.done.set_result(self.delays)
                self.transport.close()
                return
            self.events += self.buffer[:self.chunk]
            self.buffer, self.chunk = self.buffer[self.chunk + 2:], None
            *events, self.events = self.events.split(b"\n\n")
            for event in events:
                self.delays.append((now - int(SENT.search(event).group(1))) / 1e6)
                self.stopped = self.stopped or b'"message_stop"' in event


async def one_stream(host, port, source, request, at, limit):
    """Opens one stream at loop time `at`; its delays, or an exception after `limit` seconds."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    done = loop.create_future()
    transport, _ = await asyncio.wait_for(
        loop.create_connection(lambda: Stream(request, done), host, port, local_addr=source), limit)
    try:
        return await asyncio.wait_for(done, limit)
    finally:
        transport.close()


async def client_part(url, token, streams, spread, procs, index, sources, start, limit):
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "claude-3-5-haiku-latest", "max_tokens": 256, "stream": True,
                       "messages": [{"role": "user", "content": "Tell me a slow story."}]}).encode()
    request = (b"POST /v1/messages HTTP/1.1\r\nHost: bench\r\ncontent-type: application/json\r\n"
               b"anthropic-version: 2023-06-01\r\nauthorization: Bearer %s\r\n"
               b"content-length: %d\r\n\r\n%s" % (token.encode(), len(body), body))
    # CLOCK_MONOTONIC, shared by every process, is also the event loop's clock
    at = asyncio.get_running_loop().time() - time.monotonic() + start
    outcomes = await asyncio.gather(
        *(one_stream(host, int(port), (f"127.0.0.{2 + j % sources}", 0) if sources > 1 else None, request,
                     at + spread * j / streams, limit)
          for j in range(index, streams, procs)),
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
