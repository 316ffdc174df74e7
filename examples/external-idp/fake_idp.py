#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A toy identity provider for the external-idp example, standing in for
Auth0, Okta, Keycloak or Entra ID: it holds an RSA key, publishes its public
half at /.well-known/jwks.json and signs RS256 access tokens at /token.

    python3 fake_idp.py PORT_FILE     # binds 127.0.0.1 on a free port, writes the port to PORT_FILE

GET /token?sub=S[&aud=A][&scope=SC][&plan=P][&ttl=SECONDS]  -> {"access_token": ..., ...}
GET /.well-known/jwks.json                                  -> {"keys": [{kty, kid, alg, use, n, e}]}

The issuer is http://127.0.0.1:PORT/ (trailing slash, as Auth0 writes it).
Never use this for anything but trying claudegate out: anyone can ask it for a token.
"""
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "fake-idp-" + uuid.uuid4().hex[:8]


def jwks():
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    return {"keys": [jwk]}


def mint(issuer, query):
    """An access token shaped like an IdP's client-credentials token."""
    first = lambda name, default: query.get(name, [default])[0]
    now = int(time.time())
    ttl = int(first("ttl", "600"))
    claims = {
        "iss": issuer,
        "sub": first("sub", "alice@example.com"),
        "aud": first("aud", "claude-proxy"),
        "iat": min(now, now + ttl - 1),
        "exp": now + ttl,
        "scope": first("scope", "claude:messages"),
        "jti": uuid.uuid4().hex,
    }
    if "plan" in query:
        claims["plan"] = first("plan", "")
    token = jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": KID})
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        issuer = "http://127.0.0.1:%d/" % self.server.server_address[1]
        if url.path == "/.well-known/jwks.json":
            self.reply(200, jwks())
        elif url.path == "/token":
            self.reply(200, mint(issuer, parse_qs(url.query)))
        else:
            self.reply(404, {"error": "not_found"})

    def reply(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    # Rename so a reader never sees a half-written port.
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
