// SPDX-License-Identifier: Apache-2.0
// One entry point per fuzz target: the libFuzzer wrappers (fuzz_<target>.cpp)
// and the regression replay (tests/unit/test_fuzz_regressions.cpp) both call
// these, so a saved crash replays through exactly the code that found it.
// Each runs a parser on attacker-controlled bytes and checks its contract;
// a broken invariant aborts (see require).
#pragma once

#include "fuzz_keys.hpp"

#include "claudegate/base/config.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/base/text.hpp"
#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/jws.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/proxy/sse_usage.hpp"

#include "../lib/proxy/oauth_request.hpp"
#include "../lib/proxy/wire.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::fuzz {

// base64url: strict decode is canonical (decode then encode gives the input
// back) and encode always decodes to the original bytes.
inline void run_base64url(std::string_view data) {
  if (const auto decoded = base64url::decode(data)) {
    require(base64url::encode(*decoded) == data, "base64url: accepted a non-canonical encoding");
  }
  const auto round = base64url::decode(base64url::encode(data));
  require(round.has_value() && *round == data, "base64url: encode/decode round trip lost bytes");
}

// json: parse_object/parse_value never throw, respect the size limit, and a
// parsed object goes through claims::check and json::quote without throwing.
inline void run_json(std::string_view data) {
  const json::Limits limits;
  if (const auto object = json::parse_object(data, limits)) {
    require(object->is_object() && data.size() <= limits.max_bytes, "json: parse_object broke its limits");
    const auto typ = object->value("typ", json::Json("JWT"));
    (void)claims::check(typ.is_string() ? typ.get<std::string>() : "", *object, policy(), k_now);
    (void)json::quote(*object);
  }
  if (const auto value = json::parse_value(data, limits)) {
    (void)json::quote(*value);
  }
}

// jws decode: an accepted token is at most 8 KiB, three segments, and its
// signing input is the token up to the second dot, byte for byte.
inline void run_jws_decode(std::string_view data) {
  const auto decoded = jws::decode(data);
  if (!decoded) {
    return;
  }
  require(data.size() <= jws::k_max_token_bytes, "jws: accepted an oversized token");
  require(std::count(data.begin(), data.end(), '.') == 2, "jws: accepted a token without three segments");
  require(data.substr(0, data.rfind('.')) == decoded->signing_input, "jws: signing input differs from token");
  require(decoded->header.is_object() && decoded->payload.is_object(),
          "jws: header or payload not an object");
  require(base64url::encode(decoded->signature) == data.substr(data.rfind('.') + 1),
          "jws: signature bytes lost");
}

// token verify with the fixed key set and policy: an accepted token names a
// key of the set by kid and its claims satisfy the policy's issuer.
inline void run_token_verify(std::string_view data) {
  const auto verified = token::verify(data, key_set(), policy(), k_now);
  if (!verified) {
    return;
  }
  require(key_set().find(verified->kid) != nullptr, "verify: accepted a token whose kid is not in the set");
  const auto iss = verified->claims.find("iss");
  require(iss != verified->claims.end() && *iss == "claudegate",
          "verify: accepted a token from another issuer");
}

// The header lines "Name: value" of `data` as the server's parsed headers.
inline proxy::http::fields header_lines(std::string_view data) {
  proxy::http::fields headers;
  while (!data.empty()) {
    const auto end = data.find('\n');
    const auto line = data.substr(0, end);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos && colon > 0) {
      auto value = line.substr(colon + 1); // a parser drops the blanks before a value
      value.remove_prefix(std::min(value.size(), value.find_first_not_of(" \t")));
      headers.insert(line.substr(0, colon), value);
    }
    data = end == std::string_view::npos ? std::string_view{} : data.substr(end + 1);
  }
  return headers;
}

inline std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Authorization parsing: `data` is "Name: value" lines. The presented token is
// never empty nor starts with a space, and credentials are never forwarded.
inline void run_auth_header(std::string_view data) {
  proxy::Request req;
  req.headers = header_lines(data);
  if (const auto token = proxy::presented_token(req)) {
    require(!token->empty() && token->front() != ' ', "auth: presented an empty or space-led token");
  }
  for (const auto& field : proxy::forward_headers(req.headers)) {
    const auto key = lowercase(field.name_string());
    require(key != "authorization" && key != "x-api-key" && key != "connection",
            "auth: forwarded a credential or hop-by-hop header");
  }
  (void)proxy::relay_headers(req.headers);
}

// OAuth token request: the first line is the Authorization header, the rest
// the form body. Parsing never throws; a parsed form, written out again with
// every byte %-escaped, parses to the same parameters; an accepted request
// names a client, and a narrowed scope holds only scopes of the grant.
inline void run_oauth_request(std::string_view data) {
  const auto newline = data.find('\n');
  const std::string_view authorization = newline == std::string_view::npos ? data : data.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view{} : data.substr(newline + 1);
  if (const auto form = proxy::oauth::parse_form(body)) {
    std::string again;
    static constexpr char k_hex[] = "0123456789ABCDEF";
    for (const auto& [name, value] : *form) {
      for (const std::string* part : {&name, &value}) {
        for (const char c : *part) {
          const auto byte = static_cast<unsigned char>(c);
          again += {'%', k_hex[byte >> 4], k_hex[byte & 15]};
        }
        again += part == &name ? '=' : '&';
      }
    }
    const auto reparsed = proxy::oauth::parse_form(again);
    require(reparsed && *reparsed == *form, "oauth: a form written out again parsed differently");
  }
  const auto request =
      proxy::oauth::parse_token_request("application/x-www-form-urlencoded", body, authorization);
  if (!request) {
    return;
  }
  require(!request->client.client_id.empty() && !request->client.client_secret.empty(),
          "oauth: accepted a request without client credentials");
  const auto scope = proxy::oauth::narrow_scope("claude:messages claude:models", request->scope);
  for (const auto& word : scope ? text::words(*scope) : std::vector<std::string_view>{}) {
    require(word == "claude:messages" || word == "claude:models", "oauth: narrowing widened the scope");
  }
}

// SSE usage: the usage read from a stream does not depend on how the stream
// is cut into chunks (the first byte picks the cut), and is never negative.
inline void run_sse_usage(std::string_view data) {
  const std::size_t step = data.empty() ? 1 : std::size_t{static_cast<unsigned char>(data.front())} % 17 + 1;
  proxy::SseUsageMeter whole;
  whole.feed(data);
  proxy::SseUsageMeter chunked;
  for (std::size_t at = 0; at < data.size(); at += step) {
    chunked.feed(data.substr(at, step));
  }
  const auto& a = whole.usage();
  const auto& b = chunked.usage();
  require(a.input_tokens == b.input_tokens && a.output_tokens == b.output_tokens
              && a.cache_read_tokens == b.cache_read_tokens && a.cache_write_tokens == b.cache_write_tokens
              && whole.finished() == chunked.finished() && whole.model() == chunked.model(),
          "sse: usage depends on chunk boundaries");
  require(a.input_tokens >= 0 && a.output_tokens >= 0 && a.cache_read_tokens >= 0
              && a.cache_write_tokens >= 0,
          "sse: negative token count");
  const auto message = proxy::usage_from_message(data);
  require(message.input_tokens >= 0 && message.output_tokens >= 0, "sse: negative count in a message body");
}

// config: TOML text either fails with a message or gives a config whose
// built-in plans are still there.
inline void run_config(std::string_view data) {
  const auto cfg = config::parse(data, "fuzz.toml");
  if (!cfg) {
    require(!cfg.error().message.empty(), "config: failure without a message");
    return;
  }
  for (const char* name : {"free", "pro", "admin"}) {
    require(cfg->plan(name).has_value(), "config: a built-in plan disappeared");
  }
}

} // namespace claudegate::fuzz
