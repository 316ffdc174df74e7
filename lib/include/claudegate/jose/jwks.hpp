// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/keyset.hpp"

#include <filesystem>
#include <string_view>
#include <vector>

namespace claudegate::jwks {

enum class AllowSymmetric { yes, no };

// The RFC 7517 JWKS {"keys":[…]} of the public parts of `keys` (kid, kty,
// alg, use:"sig", n/e or crv/x/y). Symmetric keys are skipped, never published.
json::Json to_document(const std::vector<const keys::Key*>& keys);

// Parse JWKS `text` into a KeySet keyed by each JWK's kid (thumbprint when
// absent); asymmetric keys keep only their public part. Keys with "use"
// other than "sig" (or "key_ops" without "verify") are skipped; "oct" keys
// only when `symmetric` is yes (a private JWKS file); keys of a type, curve
// or alg we do not handle are ignored (RFC 7517 §5). Fails with malformed
// on a bad document, a bad key or a duplicate kid, unsupported when every
// key was one we do not handle.
Result<keyset::KeySet> parse(std::string_view text, AllowSymmetric symmetric);

// Read JWKS file `path` (at most 4 MiB) and parse it. "oct" keys are
// secrets: a file holding one must be accessible to its owner only; one in
// a file group/others can access is refused (config, naming the kid, the
// file, its mode and the chmod fix), never silently dropped. Fails with io
// when the file cannot be read, otherwise as parse.
Result<keyset::KeySet> load_file(const std::filesystem::path& path);

} // namespace claudegate::jwks
