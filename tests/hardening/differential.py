# SPDX-License-Identifier: Apache-2.0
"""Differential test: claudegate verify vs an independent reference (PyJWT).

  differential.py --bin CLAUDEGATE --work DIR [--seed N] [--tokens N]

Generates random valid and mutated compact JWS tokens for five keys (RS256,
PS256, ES256, EdDSA, HS256), verifies every token with `claudegate verify
--batch --jwks FILE` once per policy, and compares each verdict with the
reference below. Exit 1 on any disagreement (each printed with the token, both
verdicts and the mutation), 0 otherwise.

The reference: signatures, the alg allow-list, iss/aud and integer exp/nbf/iat
come from PyJWT (python3-jwt 2.x) and cryptography. DESIGN.md §4 is stricter than
PyJWT in several places; each such rule is a named check below (POLICY_*),
applied around the PyJWT calls in the order claudegate applies them, so that
the error code can be compared too (expired and not_yet_valid count as one
class, "time", as both exit 4).
"""
import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

import jwt
import jwt.api_jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

NOW = 1_800_000_000  # --at: every exp/nbf/iat decision is deterministic
ISSUER = "claudegate"
AUDIENCE = "claude-proxy"
MAX_LIFETIME = 24 * 3600  # claudegate's default max_access_ttl (fresh home, no config)
MAX_TOKEN_BYTES = 8 * 1024
MAX_JSON_DEPTH = 16
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493

# The verify policies claudegate runs under, one batch run each.
POLICIES = {
    "default": {"leeway": 60, "auds": [AUDIENCE], "scopes": [], "require": [],
                "args": ["--leeway", "60s", "--aud", AUDIENCE]},
    "strict": {"leeway": 0, "auds": ["other-aud", AUDIENCE], "scopes": ["claude:messages"],
               "require": ["jti"],
               "args": ["--leeway", "0s", "--aud", "other-aud", "--aud", AUDIENCE,
                        "--scope", "claude:messages", "--require", "jti"]},
}


class Reject(Exception):
    """The reference's verdict for a refused token: claudegate's error code."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def dumps(value, **kw):
    return json.dumps(value, separators=(",", ":"), **kw).encode()


# ---------------------------------------------------------------- keys

class Signer:
    """One key: how to sign with it, and the JWK/PyJWT key to verify with."""

    def __init__(self, kid, alg, private, verify_key, sig_len, jwk):
        self.kid, self.alg, self.private = kid, alg, private
        self.verify_key, self.sig_len = verify_key, sig_len
        self.jwk = dict(json.loads(jwk), kid=kid, alg=alg)
        self.algo = jwt.algorithms.get_default_algorithms()[alg]

    def sign(self, signing_input):
        return self.algo.sign(signing_input, self.private)


def make_signers():
    algs = jwt.algorithms
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ps = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    es = ec.generate_private_key(ec.SECP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    secret = os.urandom(32)
    return [
        Signer("rsa-rs256", "RS256", rs, rs.public_key(), 256, algs.RSAAlgorithm.to_jwk(rs.public_key())),
        Signer("rsa-ps256", "PS256", ps, ps.public_key(), 256, algs.RSAAlgorithm.to_jwk(ps.public_key())),
        Signer("ec-p256", "ES256", es, es.public_key(), 64, algs.ECAlgorithm.to_jwk(es.public_key())),
        Signer("okp-ed25519", "EdDSA", ed, ed.public_key(), 64, algs.OKPAlgorithm.to_jwk(ed.public_key())),
        Signer("oct-hs256", "HS256", secret, secret, 32, algs.HMACAlgorithm.to_jwk(secret)),
    ]


def write_jwks(signers, path):
    # A private file (0600): only then may claudegate load the oct (HS256) key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"keys": [s.jwk for s in signers]}, f)


# ---------------------------------------------------------------- reference

B64URL_TEXT = re.compile(rb"[A-Za-z0-9_-]*\Z")
SUPPORTED_ALGS = {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256"}
REFUSED_PARAMS = {"crit", "b64", "jku", "x5u", "jwk", "x5c", "zip", "cty"}
ALLOWED_PARAMS = {"alg", "typ", "kid", "x5t", "x5t#S256"}
ALLOWED_TYPS = {"at+jwt", "JWT"}


def policy_strict_b64url(segment):
    """POLICY_STRICT_B64URL: PyJWT pads and decodes leniently (padding,
    whitespace, '+' '/', non-zero trailing bits all pass); DESIGN.md §4 allows
    only the canonical unpadded base64url text of the bytes."""
    if not B64URL_TEXT.match(segment) or len(segment) % 4 == 1:
        raise Reject("malformed", "not base64url")
    data = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    if b64(data) != segment:
        raise Reject("malformed", "non-zero trailing bits")
    return data


def _no_duplicates(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise Reject("malformed", "duplicate member")
    return dict(pairs)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise Reject("malformed", "number overflow")
    return value


def _big_int(text):
    # Beyond 64 bits nlohmann reads an integer as a double; past DBL_MAX that overflows.
    value = int(text)
    if abs(value) > 2**64 - 1 and not math.isfinite(float(text)):
        raise Reject("malformed", "number overflow")
    return value


def _refuse_constant(name):
    raise Reject("malformed", "non-JSON constant " + name)


def _depth(value):
    """Nesting depth of containers (the root object counts)."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _refuse_lone_surrogates(value):
    # Strict UTF-8 encoding fails exactly on the lone surrogates a \uD800 escape leaves.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Reject("malformed", "lone surrogate escape")


def policy_strict_json_object(data):
    """POLICY_STRICT_JSON: Python's json (and so PyJWT) accepts duplicate
    names (last wins), NaN/Infinity, lone surrogate escapes, numbers that
    overflow a double, any depth, and via bytes also UTF-16/32 and
    surrogatepass UTF-8. DESIGN.md §4: strict UTF-8 JSON objects, no duplicates,
    depth ≤ 16. A leading UTF-8 BOM is refused (RFC 8259 §8.1: JSON text
    must not carry one), as PyJWT, panva/jose and Go refuse it."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise Reject("malformed", "json starts with a UTF-8 byte order mark")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_finite_float,
                           parse_int=_big_int, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise Reject("malformed", "json: " + str(e)[:60])
    _refuse_lone_surrogates(value)
    if _depth(value) > MAX_JSON_DEPTH:
        raise Reject("malformed", "json too deep")
    if not isinstance(value, dict):
        raise Reject("malformed", "json not an object")
    return value


def policy_header(header):
    """POLICY_HEADER: PyJWT ignores unknown and dangerous header parameters;
    DESIGN.md §4 refuses crit/b64/jku/x5u/jwk/x5c/zip/cty and anything unknown,
    requires alg from the supported list (never none) and string values.
    Parameters are judged in sorted order, as claudegate's map holds them."""
    if "alg" not in header or not isinstance(header["alg"], str):
        raise Reject("malformed", "alg missing or not a string")
    if header["alg"] not in SUPPORTED_ALGS:
        raise Reject("unsupported", "alg " + header["alg"])
    for name in sorted(header):
        if name in REFUSED_PARAMS or name not in ALLOWED_PARAMS:
            raise Reject("unsupported", "header parameter " + name)
        if name != "alg" and not isinstance(header[name], str):
            raise Reject("malformed", "header " + name + " not a string")


def policy_key_by_kid(header, keys):
    """POLICY_KID_AND_BINDING: the key is chosen by kid only, and the
    header's alg must be the key's (PyJWT gets algorithms=[key alg] too)."""
    key = keys.get(header.get("kid", ""))
    if key is None:
        raise Reject("unknown_key", "kid")
    if header["alg"] != key.alg:
        raise Reject("unsupported", "alg does not match the key")
    return key


def policy_signature_length(signature, key):
    """POLICY_SIG_LENGTH: OpenSSL (so cryptography) accepts an RSA signature
    shorter than the modulus; DESIGN.md §4 wants exactly the algorithm's length."""
    if len(signature) != key.sig_len:
        raise Reject("bad_signature", "signature length")


def pyjwt_signature(token, key):
    try:
        jwt.api_jws.decode_complete(token, key.verify_key, algorithms=[key.alg])
    except jwt.InvalidSignatureError:
        raise Reject("bad_signature", "PyJWT: signature")
    except jwt.InvalidAlgorithmError:
        raise Reject("unsupported", "PyJWT: algorithm")
    except Exception as e:  # noqa: BLE001 — any other PyJWT refusal is reported as such
        raise Reject("pyjwt:" + type(e).__name__, str(e))


def _is_string_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**64 - 1


SHAPES = [("iss", lambda v: isinstance(v, str)), ("sub", lambda v: isinstance(v, str)),
          ("aud", lambda v: isinstance(v, str) or _is_string_list(v)),
          ("jti", lambda v: isinstance(v, str)), ("plan", lambda v: isinstance(v, str)),
          ("scope", lambda v: isinstance(v, str)), ("roles", _is_string_list),
          ("daily_token_limit", _is_count), ("fid", lambda v: isinstance(v, str))]


def policy_claim_shapes(claims):
    """POLICY_CLAIM_SHAPES: PyJWT does not type-check sub/jti/scope/…; DESIGN.md
    §4's registered claims have fixed types (a wrong one is malformed)."""
    for name, fits in SHAPES:
        if name in claims and not fits(claims[name]):
            raise Reject("malformed", "claim " + name + " shape")


def _time_claim(claims, name):
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Reject("malformed", name + " not a number")
    if not 0 <= float(value) <= MAX_TIME:
        raise Reject("malformed", name + " not a sane time")
    return value


def policy_numeric_times(claims):
    """POLICY_NUMERIC_TIMES: PyJWT int()s exp/nbf/iat, so "123" and true pass
    and negative or absurd times are fine; DESIGN.md §4 wants numbers in
    [0, year 9999], and exp present."""
    exp = _time_claim(claims, "exp")
    if exp is None:
        raise Reject("claim_mismatch", "missing exp")
    return exp, _time_claim(claims, "nbf"), _time_claim(claims, "iat")


def policy_fractional_times(exp, nbf, iat, leeway):
    """POLICY_FRACTIONAL_TIMES: PyJWT truncates a fractional exp/nbf with
    int(); DESIGN.md §4 allows fractions and compares exactly. Checked here for
    float values only; integer ones are left to PyJWT."""
    if isinstance(exp, float) and NOW >= exp + leeway:
        raise Reject("time", "exp (fractional)")
    for t in (nbf, iat):
        if isinstance(t, float) and t > NOW + leeway:
            raise Reject("time", "nbf/iat (fractional)")


class FrozenClock(datetime):
    """PyJWT reads datetime.now(); --at pins claudegate's clock, this PyJWT's."""

    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(NOW, tz or timezone.utc)


jwt.api_jwt.datetime = FrozenClock


def pyjwt_claims(token, key, policy, exp, nbf, iat):
    # The signature was checked by pyjwt_signature already.
    options = {"verify_signature": False, "verify_iss": True, "verify_aud": True,
               "verify_exp": isinstance(exp, int), "verify_nbf": isinstance(nbf, int),
               "verify_iat": isinstance(iat, int), "require": []}
    try:
        jwt.api_jwt.decode_complete(token, options=options, issuer=ISSUER, audience=policy["auds"],
                                    leeway=policy["leeway"])
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise Reject("time", "PyJWT: time")
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError, jwt.MissingRequiredClaimError):
        return "claim_mismatch"
    except Exception as e:  # noqa: BLE001
        raise Reject("pyjwt:" + type(e).__name__, str(e))
    return None


def policy_lifetime(exp, iat, leeway):
    """POLICY_MAX_LIFETIME: PyJWT has no lifetime bound; DESIGN.md §4 refuses
    exp − iat above max_access_ttl (without iat: exp − now above it + leeway)."""
    if iat is not None and exp - iat > MAX_LIFETIME:
        raise Reject("claim_mismatch", "lifetime")
    if iat is None and exp - NOW > MAX_LIFETIME + leeway:
        raise Reject("claim_mismatch", "lifetime without iat")


def policy_typ_required_scope(header, claims, policy):
    """POLICY_TYP_REQUIRE_SCOPE: PyJWT ignores typ and scope, and its
    `require` treats null as missing; DESIGN.md §4: typ at+jwt or JWT, --require
    means present (any value), --scope must be in the space-separated scope."""
    if header.get("typ", "") not in ALLOWED_TYPS:
        raise Reject("claim_mismatch", "typ")
    if any(name not in claims for name in policy["require"]):
        raise Reject("claim_mismatch", "required claim")
    granted = claims.get("scope", "").split(" ")
    if any(s not in granted for s in policy["scopes"]):
        raise Reject("claim_mismatch", "scope")


def check_claims(token, key, header, claims, policy):
    policy_claim_shapes(claims)
    exp, nbf, iat = policy_numeric_times(claims)
    policy_fractional_times(exp, nbf, iat, policy["leeway"])
    mismatch = pyjwt_claims(token, key, policy, exp, nbf, iat)
    policy_lifetime(exp, iat, policy["leeway"])
    if mismatch:
        raise Reject(mismatch, "PyJWT: iss/aud")
    policy_typ_required_scope(header, claims, policy)


def verified_parts(token, keys, memo={}):  # noqa: B006 — memo: the same token under each policy
    """(header, claims, key) of a token whose form and signature pass, else Reject."""
    if token not in memo:
        try:
            memo[token] = decode_and_verify(token, keys)
        except Reject as r:
            memo[token] = r
    if isinstance(memo[token], Reject):
        raise memo[token]
    return memo[token]


def decode_and_verify(token, keys):
    if len(token) > MAX_TOKEN_BYTES:
        raise Reject("malformed", "oversized")
    if token.count(b".") != 2:  # POLICY_THREE_SEGMENTS
        raise Reject("malformed", "segments")
    h, p, s = token.split(b".")
    header = policy_strict_json_object(policy_strict_b64url(h))
    policy_header(header)
    claims = policy_strict_json_object(policy_strict_b64url(p))
    if not s:
        raise Reject("malformed", "empty signature")
    signature = policy_strict_b64url(s)
    key = policy_key_by_kid(header, keys)
    policy_signature_length(signature, key)
    pyjwt_signature(token, key)
    return header, claims, key


def reference_verdict(token, keys, policy):
    """'accept' or the error code claudegate should report for `token`."""
    try:
        header, claims, key = verified_parts(token, keys)
        check_claims(token, key, header, claims, policy)
    except Reject as r:
        return r.code
    return "accept"


# ---------------------------------------------------------------- generation

class Gen:
    """Valid material for one case: a signer, header and claims to mutate."""

    def __init__(self, rng, signers):
        self.rng, self.signers = rng, signers
        # RSA signing dominates the run time: RSA keys get half the share of the others.
        self.signer = rng.choices(signers, [1 if s.sig_len == 256 else 2 for s in signers])[0]
        self.header = {"alg": self.signer.alg, "typ": rng.choice(["at+jwt", "at+jwt", "JWT"]),
                       "kid": self.signer.kid}
        self.claims = self.valid_claims()

    def valid_claims(self):
        rng = self.rng
        iat = NOW - rng.randint(0, 3000)
        claims = {"iss": ISSUER, "sub": "user-" + str(rng.randint(1, 10**6)),
                  "aud": rng.choice([AUDIENCE, AUDIENCE, [AUDIENCE], ["x", AUDIENCE]]),
                  "iat": iat, "nbf": iat, "exp": iat + rng.randint(NOW - iat + 61, MAX_LIFETIME),
                  "jti": b64(rng.randbytes(16)).decode(), "plan": rng.choice(["free", "pro"]),
                  "scope": rng.choice(["claude:messages", "claude:messages admin", "a claude:messages"])}
        if rng.random() < 0.3:
            claims["roles"] = rng.sample(["admin", "dev", "ops"], rng.randint(0, 3))
        if rng.random() < 0.3:
            claims["daily_token_limit"] = rng.randint(0, 10**7)
        if rng.random() < 0.2:
            claims["fid"] = b64(rng.randbytes(16)).decode()
        if rng.random() < 0.2:
            claims["note"] = rng.choice(["é☃", "\u0000", {"a": [1, 2.5, None, True]}, "\U0001F600"])
        return claims

    def token(self, header=None, claims=None, h_enc=b64, p_enc=b64):
        """header.payload.signature from JSON bytes (or dicts; default: the valid
        ones), segments encoded by h_enc/p_enc, signed by this case's key."""
        h = header if isinstance(header, bytes) else dumps(self.header if header is None else header)
        p = claims if isinstance(claims, bytes) else dumps(self.claims if claims is None else claims)
        signing_input = h_enc(h) + b"." + p_enc(p)
        return signing_input + b"." + b64(self.signer.sign(signing_input))

    def other_signer(self):
        return self.rng.choice([s for s in self.signers if s is not self.signer])


def m_valid(g):
    return g.token(), "unmodified"


def m_bytes(g):
    """One bit flipped, or one byte replaced, inserted or deleted, anywhere."""
    token = bytearray(g.token())
    i, how = g.rng.randrange(len(token)), g.rng.choice(["flip", "flip", "replace", "insert", "delete"])
    value = g.rng.choice([b for b in range(256) if b != 0x0A])  # one token per line: never a newline
    if how == "flip":
        bit = g.rng.choice([b for b in range(8) if token[i] ^ (1 << b) != 0x0A])
        token[i] ^= 1 << bit
        return bytes(token), f"flip bit {bit} of byte {i}"
    if how == "replace":
        token[i] = value
    elif how == "insert":
        token.insert(i, value)
    else:
        del token[i]
    return bytes(token), f"{how} byte {i}" + ("" if how == "delete" else f" = 0x{value:02x}")


def m_json_bitflip(g):
    which = g.rng.choice(["header", "payload"])
    data = bytearray(dumps(g.header if which == "header" else g.claims))
    i, bit = g.rng.randrange(len(data)), g.rng.randrange(8)
    data[i] ^= 1 << bit
    parts = {"header": bytes(data)} if which == "header" else {"claims": bytes(data)}
    return g.token(**parts), f"re-signed {which} JSON with bit {bit} of byte {i} flipped"


def m_segments(g):
    h, p, s = g.token().split(b".")
    edits = {
        "drop signature": h + b"." + p, "drop payload": h + b"." + s, "two dots only": h + b".." + s,
        "duplicate payload": b".".join([h, p, p, s]), "swap header/payload": b".".join([p, h, s]),
        "swap payload/signature": b".".join([h, s, p]), "empty header": b"." + p + b"." + s,
        "empty payload": h + b".." + s, "empty signature": h + b"." + p + b".",
        "leading dot": b"." + b".".join([h, p, s]), "trailing dot": b".".join([h, p, s]) + b".",
        "one segment": h, "no dots": h + p + s, "four segments": b".".join([h, p, s, s]),
    }
    name = g.rng.choice(sorted(edits))
    token = edits[name]
    if g.rng.random() < 0.3:  # a dot at a random place
        i = g.rng.randrange(len(token) + 1)
        token, name = token[:i] + b"." + token[i:], name + f" + dot at {i}"
    return token, name


def _padded(data):
    return base64.urlsafe_b64encode(data)


def _std_alphabet(data):
    return base64.b64encode(data).rstrip(b"=")


def _with_trailing_bits(segment):
    if len(segment) % 4 == 0:
        return segment + b"=="  # no spare bits: pad instead
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(segment[-1:]) | 1
    return segment[:-1] + alphabet[last:last + 1]


def _with_whitespace(rng, segment):
    i = rng.randrange(len(segment) + 1)
    return segment[:i] + rng.choice([b" ", b"\t", b"\r", b"\x0b", b"\x0c"]) + segment[i:]


def m_reencode(g):
    rng = g.rng
    target = rng.choice(["header", "payload", "signature"])
    how = rng.choice(["padding", "std-alphabet", "whitespace", "trailing-bits", "canonical"])
    if target == "payload":
        g.claims["q"] = "???~~~"  # its base64 has '_' and '-', so the std alphabet differs
    elif target == "header" and how == "std-alphabet":
        g.header["x5t"] = "???~~~"
    encoders = {"padding": _padded, "std-alphabet": _std_alphabet, "canonical": b64,
                "whitespace": lambda d: _with_whitespace(rng, b64(d)),
                "trailing-bits": lambda d: _with_trailing_bits(b64(d))}
    enc = encoders[how]
    if target == "signature":
        h, p, s = g.token().split(b".")
        sig = base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))
        return h + b"." + p + b"." + enc(sig), f"signature re-encoded: {how}"
    kw = {"h_enc": enc} if target == "header" else {"p_enc": enc}
    return g.token(**kw), f"re-signed, {target} re-encoded: {how}"


def m_header_alg(g):
    rng, h = g.rng, dict(g.header)
    choice = rng.choice(["none", "None", "NONE", "lower", "unknown", "number", "null", "array",
                         "missing", "other-alg", "other-alg-and-kid", "hs256-confusion",
                         "hs256-confusion-own-kid"])
    if choice in ("none", "None", "NONE"):
        h["alg"] = choice
        signing_input = b64(dumps(h)) + b"." + b64(dumps(g.claims))
        sig = rng.choice([b"", b64(b"x" * 32)])
        return signing_input + b"." + sig, f"alg {choice}, signature '{sig.decode()}'"
    if choice == "hs256-confusion":
        # The classic: HMAC keyed with the RSA/EC/OKP public key text.
        target = rng.choice([s for s in g.signers if s.alg != "HS256"])
        h.update(alg="HS256", kid=target.kid)
        return _hmac_with_public_key(h, g.claims, target), f"HS256 keyed with {target.kid}'s public PEM"
    if choice == "hs256-confusion-own-kid":
        h.update(alg="HS256", kid="oct-hs256")
        target = rng.choice([s for s in g.signers if s.alg != "HS256"])
        return _hmac_with_public_key(h, g.claims, target), f"kid oct-hs256, MAC keyed with {target.kid}'s PEM"
    unknown = ["RS1024", "ES256K", "HS512", "Ed25519", "EdDSA ", "ES256\u0000", "RS384", "ES384"]
    values = {"lower": h["alg"].lower(), "unknown": rng.choice(unknown),
              "number": 256, "null": None, "array": [h["alg"]]}
    if choice == "missing":
        del h["alg"]
    elif choice in values:
        h["alg"] = values[choice]
    else:
        other = g.other_signer()
        h["alg"] = other.alg
        if choice == "other-alg-and-kid":
            h["kid"] = other.kid
    return g.token(header=h), f"alg {choice}: {json.dumps(h.get('alg', '<absent>'))}"


def _hmac_with_public_key(header, claims, target):
    pem = target.verify_key.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b64(dumps(header)) + b"." + b64(dumps(claims))
    return signing_input + b"." + b64(hmac.new(pem, signing_input, hashlib.sha256).digest())


def m_header_kid(g):
    h = dict(g.header)
    choice = g.rng.choice(["missing", "unknown", "empty", "number", "null", "other-key", "case", "nul"])
    if choice == "missing":
        del h["kid"]
    else:
        h["kid"] = {"unknown": "no-such-kid", "empty": "", "number": 7, "null": None,
                    "other-key": g.other_signer().kid, "case": h["kid"].upper(),
                    "nul": h["kid"] + "\u0000"}[choice]
    return g.token(header=h), f"kid {choice}: {json.dumps(h.get('kid', '<absent>'))}"


def m_header_params(g):
    h = dict(g.header)
    name = g.rng.choice(sorted(REFUSED_PARAMS) + ["foo", "x5t", "x5t#S256", "typ", "x5t-number",
                                                  "typ-missing", "typ-number", "AlG"])
    values = {"crit": ["exp"], "b64": False, "jku": "https://evil.example/jwks",
              "x5u": "https://e.example/c",
              "jwk": {"kty": "oct", "k": "AAAA"}, "x5c": ["MIIB"], "zip": "DEF", "cty": "JWT",
              "foo": "bar", "x5t": "dGh1bWI", "x5t#S256": "dGh1bWJwcmludA", "AlG": "RS256"}
    if name == "typ":
        h["typ"] = g.rng.choice(["JWT", "at+jwt", "jwt", "AT+JWT", "at+JWT", "", "JOSE",
                                 "application/at+jwt"])
    elif name == "typ-missing":
        del h["typ"]
    elif name == "typ-number":
        h["typ"] = 1
    elif name == "x5t-number":
        h["x5t"] = 5
    else:
        h[name] = values[name]
    return g.token(header=h), f"header param {name}: {json.dumps(h.get(name.split('-')[0]))}"


def _nested(depth):
    return "[" * depth + "]" * depth


def m_header_json(g):
    h, rng = g.header, g.rng
    members = ",".join(f'"{k}":{json.dumps(v)}' for k, v in h.items())
    texts = {
        "dup alg same": '{' + members + f',"alg":{json.dumps(h["alg"])}' + '}',
        "dup alg other": '{' + members + ',"alg":"none"}',
        "dup kid": '{' + members + ',"kid":"no-such-kid"}',
        "dup typ escaped": '{' + members + ',"\\u0074yp":"at+jwt"}',
        "array": "[" + members.replace(":", ",") + "]", "string": '"x"', "number": "1", "null": "null",
        "empty object": "{}", "pretty": json.dumps(h, indent=2), "escaped names":
            "{" + ",".join(f'"\\u{ord(k[0]):04x}{k[1:]}":{json.dumps(v)}' for k, v in h.items()) + "}",
        "trailing garbage": "{" + members + "}x", "trailing comma": "{" + members + ",}",
        "two objects": "{" + members + "}{}", "nan": "{" + members + ',"x5t":NaN}',
        "leading ws": " \t\r\n{" + members + "}\n", "single quotes": "{" + members.replace('"', "'") + "}",
    }
    name = rng.choice(sorted(texts) + ["bom", "double bom"])
    if name == "bom":
        data = b"\xef\xbb\xbf" + dumps(h)
    elif name == "double bom":
        data = b"\xef\xbb\xbf\xef\xbb\xbf" + dumps(h)
    else:
        data = texts[name].encode()
    return g.token(header=data), f"header JSON {name}: {data[:80]!r}"


def _time_edits(leeway):
    exp_edges = [NOW - leeway, NOW - leeway + 1, NOW - leeway + 0.5, NOW - leeway - 0.5,
                 NOW - leeway + 0.001, NOW - 10**6, NOW + 10]
    future = [NOW + leeway, NOW + leeway + 1, NOW + leeway + 0.5, NOW + leeway - 0.5, NOW + 10**6]
    bad = ["1800000600", "", True, None, [NOW + 600], {"t": 1}, -1, -0.5, 1e300, 10**30, 2**64,
           MAX_TIME, MAX_TIME + 1, 0, 0.0, -0.0]
    return exp_edges, future, bad


def m_claim_times(g):
    rng, c = g.rng, dict(g.claims)
    leeway = rng.choice([0, 60])
    exp_edges, future, bad = _time_edits(leeway)
    name = rng.choice(["exp edge", "nbf future", "iat future", "exp bad", "nbf bad", "iat bad",
                       "missing exp", "missing nbf", "missing iat", "lifetime", "lifetime no iat",
                       "exp float", "exp literal"])
    if name == "exp edge":
        c["exp"] = rng.choice(exp_edges)
    elif name in ("nbf future", "iat future"):
        c[name[:3]] = rng.choice(future)
    elif name.endswith(" bad"):
        c[name[:3]] = rng.choice(bad)
    elif name.startswith("missing"):
        del c[name[-3:]]
    elif name == "lifetime":
        c["exp"] = c["iat"] + rng.choice([MAX_LIFETIME, MAX_LIFETIME + 1, MAX_LIFETIME + 0.5,
                                          MAX_LIFETIME - 0.5])
    elif name == "lifetime no iat":
        del c["iat"]
        c["exp"] = NOW + rng.choice([MAX_LIFETIME + leeway, MAX_LIFETIME + leeway + 1,
                                     MAX_LIFETIME + leeway + 0.5, MAX_LIFETIME])
    elif name == "exp float":
        c["exp"] = c["exp"] + rng.random()
        c["iat"] = c["iat"] + rng.choice([0, rng.random()])
    else:  # number spellings json.dumps would not produce
        literal = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "1e-400", "-0", "1.8e9",
                              f"{NOW - 60}.0000001", f"{NOW - 59}e0", f"{NOW - 60}.5E0", f"{NOW}0e-1",
                              f"{NOW - 1}.9999999999"])
        text = dumps(dict(c, exp="@EXP@")).replace(b'"@EXP@"', literal.encode())
        return g.token(claims=text), f"exp literal {literal}"
    shown = {k: c.get(k, "<absent>") for k in ("exp", "nbf", "iat")}
    return g.token(claims=c), f"{name} (leeway case {leeway}): {json.dumps(shown)}"


def m_claim_iss_aud(g):
    rng, c = g.rng, dict(g.claims)
    name = rng.choice(["iss", "aud", "missing iss", "missing aud"])
    if name == "iss":
        c["iss"] = rng.choice(["Claudegate", "claudegate ", "", "other", ["claudegate"], 1, None,
                               "claudegate\u0000", "claud\u00e9gate"])
    elif name == "aud":
        c["aud"] = rng.choice([[], "", "Claude-Proxy", "other-aud", ["other-aud"], ["a", "b"],
                               ["claude-proxy", 1], [None], 5, {"aud": AUDIENCE}, [AUDIENCE, AUDIENCE],
                               " claude-proxy", [[AUDIENCE]]])
    else:
        del c[name.split()[1]]
    return g.token(claims=c), f"{name}: {json.dumps(c.get(name.split()[-1], '<absent>'))}"


def m_claim_shapes(g):
    rng, c = g.rng, dict(g.claims)
    name = rng.choice(["sub", "jti", "plan", "scope", "roles", "daily_token_limit", "fid", "missing jti",
                       "missing scope", "null jti"])
    values = {"sub": [1, None, ["a"], ""], "jti": [5, ["x"], {}], "plan": [True, 3],
              "scope": [["claude:messages"], 1, "", "claude:messages2", "claude:messages\tx",
                        " claude:messages ", "CLAUDE:MESSAGES", None],
              "roles": ["admin", [1], [None], [], ["a", ["b"]]],
              "daily_token_limit": [-1, 1.5, "100", 2**63, 2**64 - 1, 2**64, 10**30, 0, -0.0, True, None],
              "fid": [1, [], None]}
    if name.startswith("missing"):
        c.pop(name.split()[1], None)
    elif name == "null jti":
        c["jti"] = None
    else:
        c[name] = rng.choice(values[name])
    return g.token(claims=c), f"{name}: {json.dumps(c.get(name.split()[-1], '<absent>'))}"


def m_payload_json(g):
    rng, c = g.rng, g.claims
    body = dumps(c)[1:-1]
    texts = {
        "dup exp": b"{" + body + b',"exp":' + str(NOW - 10**5).encode() + b"}",
        "dup iss": b"{" + body + b',"iss":"claudegate"}', "dup custom": b"{" + body + b',"x":1,"x":1}',
        "nested dup": b"{" + body + b',"x":{"a":1,"a":2}}', "array": b"[" + body + b"]",
        "dup in array": b"{" + body + b',"x":[{"a":1},{"b":1,"b":1}]}',
        "dup differently escaped": b"{" + body + b',"x":1,"\\u0078":2}',
        "string": b'"claims"', "null": b"null", "empty": b"", "huge number": b"{" + body + b',"x":1e400}',
        "big int": b"{" + body + b',"x":' + b"9" * rng.choice([19, 20, 40, 308, 309, 400]) + b"}",
        "neg big int": b"{" + body + b',"x":-' + b"9" * rng.choice([19, 20, 309]) + b"}",
        "lone surrogate": b"{" + body + b',"x":"\\ud800"}',
        "low surrogate": b"{" + body + b',"x":"\\udc00\\ud800"}',
        "surrogate pair": b"{" + body + b',"x":"\\ud83d\\ude00"}',
        "surrogate key": b"{" + body + b',"\\ud800":1}',
        "raw surrogate utf8": b"{" + body + b',"x":"\xed\xa0\x80"}',
        "invalid utf8": b"{" + body + b',"x":"\xff"}', "overlong utf8": b"{" + body + b',"x":"\xc0\xaf"}',
        "control char": b"{" + body + b',"x":"a\x01b"}', "del char": b"{" + body + b',"x":"a\x7fb"}',
        "nul escape": b"{" + body + b',"x":"\\u0000"}', "bom": b"\xef\xbb\xbf{" + body + b"}",
        "utf16": ("{" + body.decode() + "}").encode("utf-16-le"), "bad escape": b"{" + body + b',"x":"\\x"}',
        "leading zero": b"{" + body + b',"x":01}', "true literal": b"{" + body + b',"x":True}',
        "minus zero": b"{" + body + b',"x":-0}', "exp notation": b"{" + body + b',"x":1E+2}',
        "whitespace": b" {\n" + body.replace(b",", b" ,\t") + b"\r\n} ",
        "escaped iss": b"{" + body.replace(b'"iss":"claudegate"', b'"iss":"claud\\u0065gate"') + b"}",
    }
    name = rng.choice(sorted(texts) + ["depth"])
    if name == "depth":
        depth = rng.choice([14, 15, 16, 17, 40])
        data = b"{" + body + b',"x":' + _nested(depth).encode() + b"}"
        name += f" {depth + 1}"
    else:
        data = texts[name]
    return g.token(claims=data), f"payload JSON {name}: {data[-60:]!r}"


# Raw UTF-8 edge sequences (valid and invalid per RFC 3629) and \u escapes,
# where a JSON parser's own UTF-8 and surrogate handling can go wrong.
UTF8_EDGES = [b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xe0\x9f\xbf", b"\xed\x9f\xbf",
              b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xee\x80\x80", b"\xef\xbf\xbf", b"\xef\xbb\xbf",
              b"\xf0\x90\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
              b"\xf5\x80\x80\x80", b"\xc0\x80", b"\xc1\xbf", b"\x80", b"\xbf", b"\xc2", b"\xe2\x82",
              b"\xf0\x9f\x98", b"\xfe", b"\xff", b"\xf8\x88\x80\x80\x80", b"\x7f", b"\xc2\xa0"]
ESCAPE_EDGES = [b"\\uDBFF\\uDFFF", b"\\ud800\\u0041", b"\\uD800\\uD800", b"\\uDFFF", b"\\u00",
                b"\\u00zz", b"\\U0041", b"\\uFFFF", b"\\uFEFF", b"\\u0000", b"\\/", b"\\'",
                b"\\a", b"\\ud83d\\ude00", b"\\ud83d\\\\ude00", b"\\"]


def m_unicode(g):
    """One UTF-8 or escape edge in a claim value or name, or in the header's kid."""
    rng = g.rng
    edge = rng.choice(UTF8_EDGES + ESCAPE_EDGES)
    where = rng.choice(["claim value", "claim name", "kid", "iss"])
    if where == "kid":
        header = dumps(g.header).replace(b'"kid":"', b'"kid":"' + edge)
        return g.token(header=header), f"kid starts with {edge!r}"
    body = dumps(g.claims)[:-1]
    data = {"claim value": body + b',"x":"a' + edge + b'b"}', "claim name": body + b',"' + edge + b'":1}',
            "iss": body.replace(b'"iss":"claudegate', b'"iss":"claudegate' + edge) + b"}"}[where]
    return g.token(claims=data), f"{where} with {edge!r}"


def _ecdsa_parts(sig):
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def m_signature(g):
    rng = g.rng
    h, p, s = g.token().split(b".")
    sig = base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))
    signing_input = h + b"." + p
    choices = ["truncate", "extend", "zeros", "other key", "other token", "empty", "last byte"]
    if g.signer.alg == "ES256":
        choices += ["der", "high-s", "r=0", "s=0", "r=n", "high-s", "high-s"]
    if g.signer.sig_len == 256:
        choices += ["leading zero"]
    if g.signer.alg == "PS256":
        choices += ["pss salt 0", "pss salt max", "pss salt 20"]
    if g.signer.alg == "EdDSA":
        choices += ["ed25519 s+L", "ed25519 s+L"]
    name = rng.choice(choices)
    if name == "truncate":
        new = sig[:-rng.randint(1, 3)]
    elif name == "extend":
        new = rng.choice([b"\x00" + sig, sig + b"\x00"])
    elif name == "zeros":
        new = bytes(len(sig))
    elif name == "other key":
        other = g.other_signer()
        new = other.sign(signing_input)
        name += " " + other.kid
    elif name == "other token":
        new = g.signer.sign(b64(dumps(g.header)) + b"." + b64(dumps(dict(g.claims, sub="other"))))
    elif name == "empty":
        new = b""
    elif name == "last byte":
        new = sig[:-1] + bytes([sig[-1] ^ 1])
    elif name == "der":
        new = encode_dss_signature(*_ecdsa_parts(sig))
    elif name == "high-s":
        r, s_ = _ecdsa_parts(sig)
        new = r.to_bytes(32, "big") + (P256_ORDER - s_).to_bytes(32, "big")
    elif name.startswith("pss salt"):
        # RFC 7518 §3.5 fixes the salt at the hash length (32); other lengths must fail.
        salt = {"0": 0, "20": 20, "max": padding.PSS.MAX_LENGTH}[name.split()[-1]]
        new = g.signer.private.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), salt),
                                    hashes.SHA256())
    elif name == "ed25519 s+L":
        # The malleable twin of a valid signature: S must be below the group order L.
        s_ = int.from_bytes(sig[32:], "little") + ED25519_ORDER
        new = sig[:32] + s_.to_bytes(32, "little")
    elif name in ("r=0", "s=0", "r=n"):
        r, s_ = _ecdsa_parts(sig)
        r, s_ = {"r=0": (0, s_), "s=0": (r, 0), "r=n": (P256_ORDER, s_)}[name]
        new = r.to_bytes(32, "big") + s_.to_bytes(32, "big")
    else:
        token = _rsa_with_leading_zero(g)
        if token is None:
            return signing_input + b"." + s, "leading zero: none found, unmodified"
        return token, "signature leading zero dropped (255 bytes)"
    return signing_input + b"." + b64(new), f"signature {name} ({len(new)} bytes)"


LEADING_ZERO_FOUND = {}  # kid -> token: the search costs ~256 RSA signatures, so once per key


def _rsa_with_leading_zero(g):
    """A token whose RSA signature starts with a 0 byte, with that byte dropped
    (255 bytes; OpenSSL would accept it). PS256 is randomised, so re-signing
    finds one; RS256 varies the jti. Its own RNG keeps a seed's case sequence
    independent of signature bytes."""
    if g.signer.kid not in LEADING_ZERO_FOUND:
        search = random.Random(g.rng.random())
        for _ in range(1500):
            claims = dict(g.claims, jti=b64(search.randbytes(16)).decode())
            signing_input = b64(dumps(g.header)) + b"." + b64(dumps(claims))
            sig = g.signer.sign(signing_input)
            if sig[0] == 0:
                LEADING_ZERO_FOUND[g.signer.kid] = signing_input + b"." + b64(sig[1:])
                break
    return LEADING_ZERO_FOUND.get(g.signer.kid)


def m_size(g):
    # Pad a custom claim so the token lands just under, at or over 8 KiB.
    target = g.rng.randint(MAX_TOKEN_BYTES - 6, MAX_TOKEN_BYTES + 6)
    c = dict(g.claims, pad="")
    base = len(g.token(claims=c))
    c["pad"] = "a" * max(0, (target - base) * 3 // 4)
    token = g.token(claims=c)
    return token, f"size {len(token)} bytes"


MUTATIONS = [  # (class, weight, generator)
    ("valid", 10, m_valid), ("bytes", 12, m_bytes), ("json_bitflip", 8, m_json_bitflip),
    ("segments", 5, m_segments), ("reencode", 10, m_reencode), ("header_alg", 8, m_header_alg),
    ("header_kid", 5, m_header_kid), ("header_params", 7, m_header_params),
    ("header_json", 7, m_header_json), ("claim_times", 12, m_claim_times),
    ("claim_iss_aud", 6, m_claim_iss_aud), ("claim_shapes", 7, m_claim_shapes),
    ("payload_json", 9, m_payload_json), ("unicode", 6, m_unicode), ("signature", 9, m_signature),
    ("size", 2, m_size),
]


def generate(rng, signers, count):
    names = [m[0] for m in MUTATIONS]
    weights = [m[1] for m in MUTATIONS]
    funcs = {m[0]: m[2] for m in MUTATIONS}
    cases = []
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        token, note = funcs[name](Gen(rng, signers))
        cases.append((name, token, note))
    return cases


# ---------------------------------------------------------------- running

def run_claudegate(binary, jwks, home, policy, tokens):
    cmd = [binary, "--home", home, "verify", "--batch", "--jwks", jwks, "--no-revocation",
           "--at", str(NOW), "--iss", ISSUER] + policy["args"]
    done = subprocess.run(cmd, input=b"".join(t + b"\n" for t in tokens), capture_output=True)
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if done.returncode not in (0, 3, 4) or len(lines) != len(tokens):
        sys.exit(f"FAIL: claudegate exited {done.returncode} with {len(lines)} result lines for "
                 f"{len(tokens)} tokens\nstderr: {done.stderr.decode(errors='replace')[:2000]}")
    return [json.loads(line) for line in lines]


def verdict_class(code):
    return "time" if code in ("expired", "not_yet_valid") else code


def claudegate_verdict(result):
    return "accept" if result["valid"] else verdict_class(result["code"])


def _as_floats(value):
    """`value` with every number as a float: nlohmann keeps integers beyond 64 bits as doubles."""
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def reference_claims_differ(token, keys, result):
    """For an accepted token: whether claudegate printed other claims than Python's parser read."""
    _, claims, _ = verified_parts(token, keys)
    return _as_floats(result["claims"]) != _as_floats(claims)


def compare(cases, results, keys, pname, policy, stats, disagreements):
    """Count each case's claudegate verdict; record where the reference differs
    (on the verdict, or for an accepted token on the claims' values)."""
    for (cls, token, note), result in zip(cases, results):
        ours = claudegate_verdict(result)
        ref = reference_verdict(token, keys, policy)
        if ours == ref == "accept" and reference_claims_differ(token, keys, result):
            ref = "accept, with other claim values: " + json.dumps(verified_parts(token, keys)[1])[:300]
        stats[cls]["cases"] += 1
        stats[cls]["accepted" if ours == "accept" else "rejected"] += 1
        if ours != "accept":
            stats[cls]["code:" + ours] += 1
        if ours != ref:
            stats[cls]["disagreements"] += 1
            disagreements.append((pname, cls, note, token, result, ref))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--tokens", type=int, default=2600)
    args = ap.parse_args()
    print(f"differential: seed {args.seed} (rerun with --seed {args.seed}), {args.tokens} tokens "
          f"x {len(POLICIES)} policies")
    started = time.monotonic()
    signers = make_signers()
    keys = {s.kid: s for s in signers}
    jwks = os.path.join(args.work, "keys.jwks")
    write_jwks(signers, jwks)
    cases = generate(random.Random(args.seed), signers, args.tokens)
    generated = time.monotonic()

    stats, disagreements, in_claudegate = defaultdict(Counter), [], 0.0
    for pname, policy in POLICIES.items():
        before = time.monotonic()
        results = run_claudegate(args.bin, jwks, os.path.join(args.work, "home"), policy,
                                 [t for _, t, _ in cases])
        in_claudegate += time.monotonic() - before
        compare(cases, results, keys, pname, policy, stats, disagreements)
    report(stats, disagreements)
    total = time.monotonic() - started
    print(f"time: {total:.1f}s (keys and tokens {generated - started:.1f}s, claudegate "
          f"{in_claudegate:.1f}s, reference {total - (generated - started) - in_claudegate:.1f}s)")
    if disagreements:
        print("keys (JWKS, test-only material):", json.dumps({"keys": [s.jwk for s in signers]}))
    sys.exit(1 if disagreements else 0)


def report(stats, disagreements):
    for pname, cls, note, token, result, ref in disagreements[:25]:
        print(f"DISAGREEMENT [policy {pname}] {cls}: {note}\n  token: {token!r}\n"
              f"  claudegate: {json.dumps(result)[:300]}\n  reference: {ref}")
    if len(disagreements) > 25:
        print(f"... and {len(disagreements) - 25} more disagreements")
    total = Counter()
    for cls in sorted(stats):
        s = stats[cls]
        total.update(s)
        codes = ", ".join(f"{k[5:]} {n}" for k, n in sorted(s.items()) if k.startswith("code:"))
        print(f"  {cls:14} {s['cases']:5} cases {s['accepted']:5} accepted {s['rejected']:5} rejected "
              f"{s['disagreements']:3} disagreements  ({codes or 'no rejections'})")
    print(f"{total['cases']} cases, {total['accepted']} accepted, {total['rejected']} rejected, "
          f"{len(disagreements)} disagreements")


if __name__ == "__main__":
    main()
