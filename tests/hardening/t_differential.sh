#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Differential test: thousands of random valid and mutated tokens (bit flips,
# segment and base64url re-encodings, header/claim/JSON/signature edits) for
# RS256, PS256, ES256, EdDSA and HS256 keys; claudegate verify --batch must
# reach the same verdict (and error code) as the PyJWT-based reference in
# differential.py for every one. DIFFERENTIAL_SEED pins the case sequence
# (the seed of a run is printed); DIFFERENTIAL_TOKENS sets the token count
# (each token is checked under two verify policies).
source "$(dirname "$0")/../cli/common.sh"
"$PY" -c 'import jwt, jwt.algorithms, cryptography' 2>/dev/null \
  || { echo "SKIP: python3-jwt or python3-cryptography missing (scripts/install-deps.sh)"; exit 77; }
"$PY" -c 'import jwt.algorithms as a; assert a.has_crypto' 2>/dev/null \
  || { echo "SKIP: PyJWT was installed without cryptography support"; exit 77; }

seed=${DIFFERENTIAL_SEED:-$(( $(date +%s) % 1000000 ))}
"$PY" "$(dirname "$0")/differential.py" --bin "$CG" --work "$SCRATCH" --seed "$seed" \
  --tokens "${DIFFERENTIAL_TOKENS:-2600}" || fail "claudegate and the reference disagree (seed $seed)"
pass
