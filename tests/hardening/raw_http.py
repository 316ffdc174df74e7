# SPDX-License-Identifier: Apache-2.0
"""A raw-socket HTTP/1.x client for the adversarial serve-local tests.

Usage: raw_http.py PORT [options] PIECE...
Sends the PIECEs' exact bytes on one loopback connection, reads the
responses and prints them as one JSON object:
  {"responses": [{"version", "status", "reason", "headers": [[k, v]...],
                  "body", "json"}...] (interim 1xx responses included),
   "closed": true when the server closed the connection, "elapsed": seconds,
   "send_error": why sending stopped early (or null), "leftover": unparsed bytes}
A PIECE is text with Python escapes (\\r \\n \\t \\x00 \\xff …) or @FILE for a
file's bytes. In a piece, {CL} becomes the byte length of what follows the
piece's first blank line (its body), so Content-Length stays right.
Options:
  --expect N        stop reading after N complete responses (default 1)
  --wait-close      after those, keep reading until the server closes (or --timeout)
  --byte-delay S    send byte by byte, S seconds apart (slow client); stops
                    sending once the server answers
  --slow-from I     trickle only pieces I, I+1, … (default 0: all)
  --piece-delay S   wait S seconds between pieces
  --half-close      shut down our sending side once everything is sent
  --timeout S       give up reading after S seconds without data (default 10)
"""
import argparse
import codecs
import json
import select
import socket
import sys
import time


def piece_bytes(text):
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            data = f.read()
    else:
        data = codecs.decode(text.encode("latin-1"), "unicode_escape").encode("latin-1")
    if b"{CL}" in data:
        head, sep, body = data.partition(b"\r\n\r\n")
        data = head.replace(b"{CL}", str(len(body)).encode()) + sep + body
    return data


def answered(sock):
    """True once the server has sent something (or closed): a slow sender stops there."""
    return bool(select.select([sock], [], [], 0)[0])


def send_all(sock, pieces, args):
    """Send every piece; why sending stopped early (the server answered or hung up), else None."""
    try:
        for index, data in enumerate(pieces):
            if index and args.piece_delay:
                time.sleep(args.piece_delay)
            if not args.byte_delay or index < args.slow_from:
                sock.sendall(data)
                continue
            for i in range(len(data)):
                if answered(sock):
                    return "answered while sending"
                sock.sendall(data[i:i + 1])
                time.sleep(args.byte_delay)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return None


def parse_chunked(data, start):
    """(body, end) of the chunked body at data[start:], or None if incomplete."""
    body, pos = b"", start
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(data[pos:line_end].split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", pos - 2)
            return (body, trailer_end + 4) if trailer_end >= 0 else None
        if len(data) < pos + size + 2:
            return None
        body += data[pos:pos + size]
        pos += size + 2


def parse_one(data, closed):
    """(response, rest) for the first complete response in data, or None."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status, _, reason = rest.partition(" ")
    headers = [[k.strip(), v.strip()] for k, _, v in (line.partition(":") for line in lines[1:])]
    names = {k.lower(): v for k, v in headers}
    start = head_end + 4
    if status.startswith("1"):  # an interim response (100 Continue) has no body
        body, end = b"", start
    elif "chunked" in names.get("transfer-encoding", "").lower():
        parsed = parse_chunked(data, start)
        if parsed is None:
            return None
        body, end = parsed
    elif "content-length" in names:
        end = start + int(names["content-length"])
        if len(data) < end:
            return None
        body = data[start:end]
    elif closed:
        body, end = data[start:], len(data)
    else:
        return None
    text = body.decode("latin-1")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    response = {"version": version, "status": int(status), "reason": reason,
                "headers": headers, "body": text, "json": doc}
    return response, data[end:]


def read_responses(sock, expect, wait_close, timeout):
    data, responses, closed = b"", [], False
    sock.settimeout(timeout)
    while True:
        parsed = parse_one(data, closed)
        while parsed is not None:
            responses.append(parsed[0])
            data = parsed[1]
            parsed = parse_one(data, closed) if data else None
        if closed or (len(responses) >= expect and not wait_close):
            break
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            chunk = b""
        if not chunk:
            closed = True
            continue
        data += chunk
    return responses, closed, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pieces", nargs="+")
    ap.add_argument("--expect", type=int, default=1)
    ap.add_argument("--wait-close", action="store_true")
    ap.add_argument("--byte-delay", type=float, default=0)
    ap.add_argument("--slow-from", type=int, default=0)
    ap.add_argument("--piece-delay", type=float, default=0)
    ap.add_argument("--half-close", action="store_true")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    send_error = send_all(sock, [piece_bytes(p) for p in args.pieces], args)
    if args.half_close and send_error is None:
        sock.shutdown(socket.SHUT_WR)
    responses, closed, rest = read_responses(sock, args.expect, args.wait_close, args.timeout)
    sock.close()
    json.dump({"responses": responses, "closed": closed, "send_error": send_error,
               "elapsed": round(time.monotonic() - started, 3),
               "leftover": rest.decode("latin-1")}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
