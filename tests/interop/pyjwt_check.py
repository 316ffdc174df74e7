# SPDX-License-Identifier: Apache-2.0
"""Independent checks with PyJWT (Debian python3-jwt).

  pyjwt_check.py verify JWKS_FILE TOKEN AUD ISS   -> prints the sub, exit 0 if PyJWT accepts
  pyjwt_check.py keypair ALG DIR                  -> writes DIR/key.pem or DIR/key.jwk for import
  pyjwt_check.py sign ALG DIR KID AUD ISS SUB     -> prints a token PyJWT signed with that key
"""
import base64
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def verify(jwks_file, token, aud, iss):
    jwks = jwt.PyJWKSet.from_json(open(jwks_file).read())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    alg = jwt.get_unverified_header(token)["alg"]
    claims = jwt.decode(token, key.key, algorithms=[alg], audience=aud, issuer=iss,
                        options={"require": ["exp", "iat", "sub", "jti"]})
    print(claims["sub"])


def make_private_key(alg):
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise SystemExit(f"no key type for {alg}")


def keypair(alg, folder):
    if alg == "HS256":
        secret = os.urandom(32)
        k = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
        with open(os.path.join(folder, "key.jwk"), "w") as f:
            json.dump({"kty": "oct", "k": k, "alg": "HS256"}, f)
        return
    pem = make_private_key(alg).private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    with open(os.path.join(folder, "key.pem"), "wb") as f:
        f.write(pem)


def signing_key(alg, folder):
    if alg == "HS256":
        jwk = json.load(open(os.path.join(folder, "key.jwk")))
        return base64.urlsafe_b64decode(jwk["k"] + "=" * (-len(jwk["k"]) % 4))
    return serialization.load_pem_private_key(open(os.path.join(folder, "key.pem"), "rb").read(), None)


def sign(alg, folder, kid, aud, iss, sub):
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "nbf": now, "exp": now + 600,
              "jti": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()}
    print(jwt.encode(claims, signing_key(alg, folder), algorithm=alg,
                     headers={"kid": kid, "typ": "at+jwt"}))


if __name__ == "__main__":
    {"verify": verify, "keypair": keypair, "sign": sign}[sys.argv[1]](*sys.argv[2:])
