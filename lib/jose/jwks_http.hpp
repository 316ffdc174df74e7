// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

// One HTTP(S) GET for the JWKS fetch: its own io_context, connect and read
// timeouts, TLS with SNI, hostname verification and the system CAs, a cap
// on the body, redirects never followed.
namespace claudegate::jwks_remote {

struct GetRequest {
  bool tls = false;
  std::string host; // without brackets
  std::string port;
  std::string authority; // the Host header
  std::string target;
  std::int64_t timeout = 5;  // seconds: the connect, and each read
  std::size_t max_bytes = 0; // largest body accepted
};

// Why a GET failed; the reason words are jwks_remote's error messages.
enum class GetFailure {
  none,
  refused,
  connect_timeout,
  read_failed,
  tls_handshake,
  tls_verify,
  tls_setup,
  too_big,
  too_slow
};

struct GetReply {
  GetFailure failure = GetFailure::none;
  std::string detail; // e.g. the certificate error
  int status = 0;     // 0 when no head arrived
  std::string cache_control;
  std::string location;
  std::string body; // only for a 200
};

// GET `request`: the head, and the body of a 200 within max_bytes and twice
// the timeout.
GetReply http_get(const GetRequest& request);

} // namespace claudegate::jwks_remote
