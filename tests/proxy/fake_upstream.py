# SPDX-License-Identifier: Apache-2.0
"""A recording fake Anthropic API for the serve-local tests (loopback only).

Usage: fake_upstream.py PORT_FILE RECORD_FILE
Writes its port to PORT_FILE, appends one JSON line per request to
RECORD_FILE (method, target, headers, body as latin-1 text) and answers:
  POST /v1/messages            JSON message, or SSE events when "stream": true
  POST /v1/messages/count_tokens
  GET  /v1/models[/{id}]
Knobs (request headers; serve-local forwards only anthropic-* and a few
others, so each knob is also read as anthropic-fake-*): x-fake-sleep:
seconds before answering; x-fake-event-delay: seconds between SSE events
(default 0.3); x-fake-gzip: 1 to send a JSON reply gzip-encoded
(Content-Encoding: gzip) whatever the request's Accept-Encoding.
Every reply carries the Server header of Python's http.server.
"""
import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, RECORD_FILE = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()
MODELS = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"]

MESSAGE = {
    "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "hello from the fake upstream"}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 34,
              "cache_read_input_tokens": 5, "cache_creation_input_tokens": 2},
}


def sse_events():
    start = {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [], "stop_reason": None,
        "usage": {"input_tokens": 25, "output_tokens": 1,
                  "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7}}}
    yield "message_start", start
    yield "ping", {"type": "ping"}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}
    for i, word in enumerate(["one ", "two ", "three ", "four "]):
        yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": word}}
        if i == 1:
            yield "message_delta", {"type": "message_delta", "delta": {},
                                    "usage": {"output_tokens": 5}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": 17}}
    yield "message_stop", {"type": "message_stop"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def knob(self, name, default):
        return self.headers.get("x-fake-" + name, self.headers.get("anthropic-fake-" + name, default))

    def log_message(self, *args):
        pass

    def record(self, body):
        line = {"method": self.command, "target": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1")}
        with LOCK, open(RECORD_FILE, "a") as f:
            f.write(json.dumps(line) + "\n")

    def reply(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        gzipped = self.knob("gzip", "") == "1"
        if gzipped:
            data = gzip.compress(data)
        self.send_response(status)
        self.send_header("content-type", content_type)
        if gzipped:
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_upstream_123")
        self.send_header("anthropic-ratelimit-requests-limit", "4000")
        self.send_header("anthropic-organization-id", "org-fake")
        self.end_headers()
        self.wfile.write(data)

    def stream(self):
        delay = float(self.knob("event-delay", "0.3"))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_upstream_stream")
        self.end_headers()
        try:
            for name, data in sse_events():
                chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.record(body)
        time.sleep(float(self.knob("sleep", "0")))
        path = self.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            return self.reply(200, json.dumps({"input_tokens": 42}))
        if path != "/v1/messages":
            return self.reply(404, '{"type":"error","error":{"type":"not_found_error","message":"nope"}}')
        try:
            wants_stream = json.loads(body).get("stream") is True
        except ValueError:
            return self.reply(400, '{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}')
        if wants_stream:
            return self.stream()
        return self.reply(200, json.dumps(MESSAGE))

    def do_GET(self):
        self.record(b"")
        path = self.path.split("?")[0]
        if path == "/v1/models":
            data = [{"type": "model", "id": m, "display_name": m} for m in MODELS]
            return self.reply(200, json.dumps({"data": data, "has_more": False,
                                               "first_id": MODELS[0], "last_id": MODELS[-1]}))
        if path.startswith("/v1/models/") and path[11:] in MODELS:
            return self.reply(200, json.dumps({"type": "model", "id": path[11:]}))
        return self.reply(404, '{"type":"error","error":{"type":"not_found_error","message":"nope"}}')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
