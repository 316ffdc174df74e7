# SPDX-License-Identifier: Apache-2.0
"""A stand-in for an external IdP (Auth0/Okta) with PyJWT (Debian python3-jwt).

  fake_idp.py keypair DIR NAME                 -> DIR/NAME.pem, an RSA key the IdP signs with
  fake_idp.py jwks DIR NAME...                 -> DIR/jwks.json publishing those keys (kid = NAME)
  fake_idp.py sign DIR NAME ISS AUD SUB [JSON] -> prints an RS256 token (typ JWT, kid NAME), extra claims JSON
  fake_idp.py serve DIR                        -> serves on 127.0.0.1 (free port written to DIR/port):
      /jwks.json  DIR/jwks.json, re-read per request; each request appends a line to DIR/requests
      /missing    404
      /garbage    200 with a body that is not JSON
      /hang       accepts and never answers
"""
import http.server
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def keypair(folder, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with open(os.path.join(folder, name + ".pem"), "wb") as f:
        f.write(pem)


def private_key(folder, name):
    return serialization.load_pem_private_key(open(os.path.join(folder, name + ".pem"), "rb").read(), None)


def write_jwks(folder, *names):
    keys = []
    for name in names:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key(folder, name).public_key()))
        jwk.update({"kid": name, "alg": "RS256", "use": "sig"})
        keys.append(jwk)
    tmp = os.path.join(folder, "jwks.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"keys": keys}, f)
    os.replace(tmp, os.path.join(folder, "jwks.json"))


def sign(folder, name, iss, aud, sub, extra="{}"):
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": now + 600,
              "scope": "openid claude:messages"}
    claims.update(json.loads(extra))
    print(jwt.encode(claims, private_key(folder, name), algorithm="RS256", headers={"kid": name, "typ": "JWT"}))


def serve(folder):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/jwks.json":
                with open(os.path.join(folder, "requests"), "a") as f:
                    f.write("GET\n")
                self.reply(200, open(os.path.join(folder, "jwks.json"), "rb").read())
            elif self.path == "/garbage":
                self.reply(200, b"<html>not json</html>")
            elif self.path == "/hang":
                time.sleep(120)
            else:
                self.reply(404, b'{"error":"not found"}')

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = os.path.join(folder, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, os.path.join(folder, "port"))
    server.serve_forever()


if __name__ == "__main__":
    {"keypair": keypair, "jwks": write_jwks, "sign": sign, "serve": serve}[sys.argv[1]](*sys.argv[2:])
