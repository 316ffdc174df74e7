// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/tls_client.hpp"

#include <boost/asio/ip/address.hpp>
#include <fmt/core.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace claudegate::tls {

namespace ssl = boost::asio::ssl;

Result<std::shared_ptr<ssl::context>> client_context(const std::string& ca_file) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3
                           | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                       ec);
  if (!ec) {
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(ssl::verify_peer, ec);
  }
  if (!ec) {
    if (ca_file.empty()) {
      context->set_default_verify_paths(ec);
    } else {
      context->load_verify_file(ca_file, ec);
    }
  }
  if (ec) {
    return fail(Errc::config,
                fmt::format("cannot set up TLS: the {} could not be loaded ({})",
                            ca_file.empty() ? "system CA certificates" : "CA file " + ca_file, ec.message()));
  }
  return context;
}

Result<void> expect_peer(SSL* ssl, std::string_view host) {
  const std::string name(host);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(name, ec);
  int ok = 0;
  if (!ec) {
    // An address literal: no SNI (RFC 6066 §3), the certificate must hold it as an IP SAN.
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.to_string().c_str());
  } else {
    // SSL_set_tlsext_host_name, without its C cast.
    const long sni = SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                              const_cast<char*>(name.c_str()));
    ok = sni == 1 ? SSL_set1_host(ssl, name.c_str()) : 0;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (ok != 1) {
    return fail(Errc::internal, fmt::format("cannot set up TLS for host {}", name));
  }
  return {};
}

std::string verify_failure(const SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  return result == X509_V_OK ? std::string() : X509_verify_cert_error_string(result);
}

} // namespace claudegate::tls
