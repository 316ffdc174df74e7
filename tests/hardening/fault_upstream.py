# SPDX-License-Identifier: Apache-2.0
"""A misbehaving Anthropic API for the upstream fault tests (loopback only).

Usage: fault_upstream.py PORT_FILE RECORD_FILE
Writes its port to PORT_FILE and appends the fault mode of every request it
reads to RECORD_FILE (one line each), then answers as the request header
`x-fault` (or `anthropic-fault`, which serve-local forwards) says:
  garbage         bytes that are not HTTP, then close
  html502         502 with an HTML body (a load balancer's error page)
  short-body      200 whose body ends before its content-length, then close
  bad-json        200 with a complete body that is truncated JSON
  reset-stream    SSE: message_start (input 25) and a delta (output 5), then RST
  stall-stream    SSE: the same two events, then silence for 30 s
  ok              200 with a well-formed message (usage: input 12, output 34)
"""
import json
import socket
import struct
import sys
import threading
import time

PORT_FILE, RECORD_FILE = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()

START = {"type": "message_start", "message": {
    "id": "msg_fault", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [], "stop_reason": None,
    "usage": {"input_tokens": 25, "output_tokens": 1,
              "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7}}}
DELTA = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 5}}


def read_request(conn):
    """The request's headers (lower-case names); the body is read and dropped."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return {}
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return headers


def head(status, content_type, extra=""):
    return (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nrequest-id: req_fault_upstream\r\n"
            "connection: close\r\n"
            f"{extra}\r\n").encode()


def sse_chunk(event):
    data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def reset(conn):
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def answer(conn, mode):
    if mode == "ok":
        body = json.dumps({"id": "msg_fault", "type": "message", "role": "assistant",
                           "content": [{"type": "text", "text": "fine"}],
                           "usage": {"input_tokens": 12, "output_tokens": 34}}).encode()
        conn.sendall(head("200 OK", "application/json", f"content-length: {len(body)}\r\n") + body)
    elif mode == "garbage":
        conn.sendall(b"\x00\x01\x02 this is not HTTP at all \xff\xfe\r\n\r\n")
    elif mode == "html502":
        body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        conn.sendall(head("502 Bad Gateway", "text/html", f"content-length: {len(body)}\r\n") + body)
    elif mode == "short-body":
        conn.sendall(head("200 OK", "application/json", "content-length: 400\r\n")
                     + b'{"id":"msg_fault","usage":{"input_tokens":12,')
    elif mode == "bad-json":
        body = b'{"id":"msg_fault","type":"message","usage":{"input_tokens":12,"output_tok'
        conn.sendall(head("200 OK", "application/json", f"content-length: {len(body)}\r\n") + body)
    elif mode in ("reset-stream", "stall-stream"):
        conn.sendall(head("200 OK", "text/event-stream", "transfer-encoding: chunked\r\n")
                     + sse_chunk(START) + sse_chunk(DELTA))
        time.sleep(0.3)
        if mode == "reset-stream":
            return reset(conn)
        time.sleep(30)
    conn.close()


def serve(conn):
    try:
        headers = read_request(conn)
        mode = headers.get("x-fault", headers.get("anthropic-fault", "none"))
        with LOCK, open(RECORD_FILE, "a") as f:
            f.write(mode + "\n")
        answer(conn, mode)
    except OSError:
        pass


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
import os
os.rename(PORT_FILE + ".tmp", PORT_FILE)
while True:
    client, _ = listener.accept()
    threading.Thread(target=serve, args=(client,), daemon=True).start()
