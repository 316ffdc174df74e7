# SPDX-License-Identifier: Apache-2.0
"""A fake Anthropic API that meters as the real one does (loopback only).

Usage: metering_upstream.py PORT_FILE RECORD_FILE
Writes its port to PORT_FILE and appends one JSON line per request to
RECORD_FILE (method, target, headers, body). Unlike fake_upstream.py, a
stream reports its output usage only in the final message_delta, as
api.anthropic.com does. Knobs (request headers; anthropic-* because
serve-local forwards only those and a few others):
  anthropic-fake-deltas: N         text deltas in a stream (default 40), 0.05 s apart
  anthropic-fake-mode: die         stream: close the connection after the deltas, no final usage
  anthropic-fake-mode: text        plain reply: 200 with a body that is not JSON
  anthropic-fake-mode: gzip        plain reply: gzip-encoded JSON when Accept-Encoding allows it
  anthropic-fake-input: N          input_tokens to report (default 20)
"""
import gzip
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, RECORD_FILE = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()
WORD = "lorem ipsum dolor "  # 18 bytes of text per delta


def usage(input_tokens, output_tokens):
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, body):
        with LOCK, open(RECORD_FILE, "a") as f:
            f.write(json.dumps({"method": self.command, "target": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body.decode("latin-1")}) + "\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.record(body)
        request = json.loads(body)
        self.input_tokens = int(self.headers.get("anthropic-fake-input", "20"))
        if request.get("stream"):
            self.stream(int(self.headers.get("anthropic-fake-deltas", "40")), self.headers.get("anthropic-fake-mode"))
        else:
            self.plain(request, self.headers.get("anthropic-fake-mode"))

    def plain(self, request, mode):
        reply = {"id": "msg_m", "type": "message", "role": "assistant", "model": request.get("model"),
                 "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                 "usage": usage(self.input_tokens, 9)}
        data, headers = json.dumps(reply).encode(), {"content-type": "application/json"}
        if mode == "text":
            data, headers = b"ok, but not JSON", {"content-type": "text/plain"}
        elif mode == "gzip" and "gzip" in self.headers.get("accept-encoding", ""):
            data, headers["content-encoding"] = gzip.compress(data), "gzip"
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("request-id", "req_metering")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def event(self, kind, payload):
        data = f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))  # one chunk per event
        self.wfile.flush()

    def stream(self, deltas, mode):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("request-id", "req_metering")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            self.event("message_start", {"type": "message_start", "message": {
                "id": "msg_m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                "content": [], "stop_reason": None, "usage": usage(self.input_tokens, 1)}})
            self.event("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}})
            for _ in range(deltas):
                self.event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": WORD}})
                time.sleep(0.05)
            if mode == "die":
                return  # closed without the last chunk: a broken-off body, no final usage
            self.event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self.event("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                         "usage": {"output_tokens": deltas * 4}})
            self.event("message_stop", {"type": "message_stop"})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
