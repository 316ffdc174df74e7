// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>
#include <string_view>

// The TLS client side shared by every outbound HTTPS connection (the
// upstream client, the JWKS fetch): one way to trust, verify and name a peer.
namespace claudegate::tls {

// A client context: TLS 1.2 or later, peer verification on, trusting the
// system CAs — or only `ca_file` (PEM) when given, which tests use for a
// certificate they made. Fails with config when the CAs cannot be loaded.
Result<std::shared_ptr<boost::asio::ssl::context>> client_context(const std::string& ca_file = {});

// Ready `ssl` (a connection about to handshake) for `host`: SNI (for a name,
// never for an address literal) and the certificate must name `host` (DNS
// name or IP address). Fails with internal when OpenSSL refuses.
Result<void> expect_peer(SSL* ssl, std::string_view host);

// Why the handshake of `ssl` failed when certificate verification is the
// cause ("self-signed certificate", "hostname mismatch", ...); empty otherwise.
std::string verify_failure(const SSL* ssl);

} // namespace claudegate::tls
