// SPDX-License-Identifier: Apache-2.0
#include "wire.hpp"

#include "claudegate/proxy/anthropic_error.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

namespace claudegate::proxy {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_hop_by_hop(const std::string& name) {
  static const std::set<std::string> k_hop = {
      "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te",         "trailer",    "trailers",           "transfer-encoding",
      "upgrade"};
  return k_hop.contains(name);
}

// Names listed in the Connection header are hop-by-hop too (RFC 9110 §7.6.1).
std::set<std::string> connection_named(const httplib::Headers& headers) {
  std::set<std::string> named;
  for (auto [it, end] = headers.equal_range("Connection"); it != end; ++it) {
    std::string_view rest = it->second;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') {
        item.remove_prefix(1);
      }
      while (!item.empty() && item.back() == ' ') {
        item.remove_suffix(1);
      }
      named.insert(lower(item));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return named;
}

bool never_forwarded(const std::string& name) {
  static const std::set<std::string> k_dropped = {
      "authorization", "x-api-key",   "host",        "content-length", "accept-encoding",
      "expect",        "remote_addr", "remote_port", "local_addr",     "local_port"};
  return k_dropped.contains(name);
}

bool never_relayed(const std::string& name) {
  static const std::set<std::string> k_dropped = {"content-length", "content-type", "content-encoding"};
  return k_dropped.contains(name) || name.starts_with("anthropic-ratelimit-");
}

} // namespace

httplib::Headers forward_headers(const httplib::Headers& client) {
  const auto named = connection_named(client);
  httplib::Headers out;
  for (const auto& [name, value] : client) {
    const std::string key = lower(name);
    if (!is_hop_by_hop(key) && !never_forwarded(key) && !named.contains(key)) {
      out.emplace(name, value);
    }
  }
  return out;
}

httplib::Headers relay_headers(const httplib::Headers& upstream) {
  const auto named = connection_named(upstream);
  httplib::Headers out;
  for (const auto& [name, value] : upstream) {
    const std::string key = lower(name);
    if (!is_hop_by_hop(key) && !never_relayed(key) && !named.contains(key)) {
      out.emplace(name, value);
    }
  }
  return out;
}

std::optional<std::string> presented_token(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.size() > 7 && lower(std::string_view(auth).substr(0, 7)) == "bearer ") {
    if (const auto start = auth.find_first_not_of(' ', 7); start != std::string::npos) {
      return auth.substr(start);
    }
  }
  const std::string key = req.get_header_value("x-api-key");
  if (!key.empty()) {
    return key;
  }
  return std::nullopt;
}

void write_rejection(httplib::Response& res, const Rejection& rejection, const std::string& request_id) {
  res.status = rejection.status;
  res.set_header("request-id", request_id);
  if (rejection.status == 401) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  }
  if (rejection.retry_after) {
    res.set_header("retry-after", std::to_string(*rejection.retry_after));
  }
  if (!rejection.should_retry) {
    res.set_header("x-should-retry", "false");
  }
  res.set_content(error_body(rejection.type, rejection.message, request_id), "application/json");
}

std::string_view error_type_for(int status) {
  switch (status) {
  case 400:
    return "invalid_request_error";
  case 401:
    return "authentication_error";
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 504:
    return "timeout_error";
  default:
    return "api_error";
  }
}

} // namespace claudegate::proxy
