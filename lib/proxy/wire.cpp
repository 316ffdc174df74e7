// SPDX-License-Identifier: Apache-2.0
#include "wire.hpp"

#include "claudegate/base/text.hpp"
#include "claudegate/proxy/anthropic_error.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>
#include <vector>

namespace claudegate::proxy {

namespace {

bool is_hop_by_hop(const std::string& name) {
  static const std::set<std::string> k_hop = {
      "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te",         "trailer",    "trailers",           "transfer-encoding",
      "upgrade"};
  return k_hop.contains(name);
}

// Names listed in the Connection header are hop-by-hop too (RFC 9110 §7.6.1).
std::set<std::string> connection_named(const http::fields& headers) {
  std::set<std::string> named;
  for (auto [it, end] = headers.equal_range(http::field::connection); it != end; ++it) {
    std::string_view rest = it->value();
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      named.insert(text::lower(text::trim(rest.substr(0, comma), " ")));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return named;
}

// The allowlist of client headers sent upstream (DESIGN.md §5).
bool forwarded(const std::string& name) {
  static const std::set<std::string> k_allowed = {"content-type", "accept", "user-agent"};
  return k_allowed.contains(name) || name.starts_with("anthropic-") || name.starts_with("x-stainless-");
}

// Content-Length and Content-Type go with the body; Server names the
// upstream's software, which is none of the client's business.
bool never_relayed(const std::string& name) {
  static const std::set<std::string> k_dropped = {"content-length", "content-type", "server"};
  return k_dropped.contains(name) || name.starts_with("anthropic-ratelimit-");
}

CredentialProblem ambiguous(const std::string& what) {
  return {"ambiguous", what + "; send one credential: Authorization: Bearer <token> or x-api-key"};
}

// The token of an "Authorization: Bearer <token>" value (RFC 6750 §2.1);
// nothing when the value is empty or "Bearer" alone (a client whose token
// helper failed sends that).
std::expected<std::optional<std::string>, CredentialProblem> bearer_token(std::string_view value) {
  value = text::trim(value);
  if (value.empty() || text::lower(value) == "bearer") {
    return std::nullopt;
  }
  const auto space = value.find(' ');
  if (space == std::string_view::npos || text::lower(value.substr(0, space)) != "bearer") {
    return std::unexpected(CredentialProblem{"malformed", "Authorization must be \"Bearer <token>\""});
  }
  return std::string(text::trim(value.substr(space)));
}

// What a request head says about its body's framing.
struct Framing {
  int lengths = 0;
  bool length_is_number = true;
  int encodings = 0;
  std::string encoding;
  std::string content_coding; // the body's Content-Encoding, if not identity
};

Rejection bad_head(std::string message) {
  return {400, "invalid_request_error", std::move(message), std::nullopt, false};
}

bool is_tchar(unsigned char c) {
  return std::isalnum(c) != 0
         || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// RFC 9110 §5.5: HTAB, SP, visible characters and obs-text; never CR, LF, NUL or other controls.
bool is_field_byte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool all_of(std::string_view text, bool (*allowed)(unsigned char)) {
  return std::all_of(text.begin(), text.end(),
                     [allowed](char c) { return allowed(static_cast<unsigned char>(c)); });
}

void note_framing(const std::string& name, std::string_view value, Framing& framing) {
  if (name == "content-length") {
    ++framing.lengths;
    framing.length_is_number =
        !value.empty() && value.size() <= 18
        && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  } else if (name == "transfer-encoding") {
    ++framing.encodings;
    framing.encoding = text::lower(value);
  } else if (name == "content-encoding" && text::lower(value) != "identity") {
    framing.content_coding = value;
  }
}

std::optional<Rejection> check_field(std::string_view line, Framing& framing) {
  if (line.front() == ' ' || line.front() == '\t') {
    return bad_head("a header line continues the previous one (obs-fold); send each header on one line");
  }
  const auto colon = line.find(':');
  const std::string_view name = line.substr(0, colon);
  if (colon == std::string_view::npos || name.empty() || !all_of(name, is_tchar)) {
    return bad_head("malformed header line (a field name, then a colon, with no space between)");
  }
  const std::string_view value = line.substr(colon + 1);
  if (!all_of(value, is_field_byte)) {
    return bad_head(fmt::format("header {} contains a control character (CR, LF or NUL)", name));
  }
  note_framing(text::lower(name), text::trim(value), framing);
  return std::nullopt;
}

std::optional<Rejection> check_framing(const Framing& framing) {
  if (framing.lengths > 1) {
    return bad_head("Content-Length is repeated; send it once");
  }
  if (framing.lengths == 1 && !framing.length_is_number) {
    return bad_head("Content-Length is not a number of bytes");
  }
  if (framing.lengths > 0 && framing.encodings > 0) {
    return bad_head("both Content-Length and Transfer-Encoding are set; send one of them");
  }
  if (framing.encodings > 1 || (framing.encodings == 1 && framing.encoding != "chunked")) {
    return bad_head("Transfer-Encoding: only a single chunked coding is supported");
  }
  // Inflating such a body before authentication has no bound
  // on the result (a 300 KB gzip body takes 500 MB): refused unread.
  if (!framing.content_coding.empty()) {
    return Rejection{415, "invalid_request_error",
                     fmt::format("request bodies with Content-Encoding: {} are not accepted; send the body "
                                 "uncompressed",
                                 framing.content_coding.substr(0, 40)),
                     std::nullopt, false};
  }
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

// Why a percent-escape in `path` is not canonical: malformed, a control
// byte, "/" or "\\" (the router would see a separator the upstream does not),
// or an unreserved byte (RFC 3986 §6.2.2.2: never encoded, "%2e" is a dot).
std::optional<std::string> check_escapes(std::string_view path) {
  for (auto percent = path.find('%'); percent != std::string_view::npos;
       percent = path.find('%', percent + 1)) {
    const int high = percent + 2 < path.size() ? hex_value(path[percent + 1]) : -1;
    const int low = high >= 0 ? hex_value(path[percent + 2]) : -1;
    if (low < 0) {
      return "a % not followed by two hex digits";
    }
    const auto byte = static_cast<unsigned char>(high * 16 + low);
    if (byte < 0x20 || byte == 0x7f) {
      return "a percent-encoded control byte";
    }
    if (byte == '/' || byte == '\\') {
      return fmt::format("a percent-encoded \"{}\"", static_cast<char>(byte));
    }
    if (is_unreserved(byte)) {
      return fmt::format("a percent-encoded \"{}\", which is never encoded", static_cast<char>(byte));
    }
  }
  return std::nullopt;
}

// Why `path` has a segment the router and the upstream could resolve differently.
std::optional<std::string> check_segments(std::string_view path) {
  if (path.find('\\') != std::string_view::npos) {
    return "a backslash";
  }
  if (path.find("//") != std::string_view::npos) {
    return "an empty segment (//)";
  }
  std::string_view rest = path.substr(1);
  for (;;) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment == "." || segment == "..") {
      return fmt::format("a \"{}\" segment", segment);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  return std::nullopt;
}

// "METHOD target HTTP/1.x" with a method the server knows (others are refused
// without reading the rest of the head, which would then pass for a request).
std::optional<Rejection> check_request_line(std::string_view line) {
  static const std::set<std::string_view> k_methods = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                       "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"};
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (!all_of(line, is_field_byte) || first == std::string_view::npos || first == last) {
    return bad_head("malformed request line (METHOD TARGET HTTP/1.1)");
  }
  const std::string_view target = line.substr(first + 1, last - first - 1);
  const std::string_view version = line.substr(last + 1);
  if (target.empty() || target.find_first_of(" \t") != std::string_view::npos
      || (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return bad_head("malformed request line (METHOD TARGET HTTP/1.1)");
  }
  if (!k_methods.contains(line.substr(0, first))) {
    return bad_head(fmt::format("unsupported method {}", line.substr(0, first)));
  }
  if (auto why = check_target_path(target)) {
    return bad_head(*why);
  }
  return std::nullopt;
}

// The lines of `head` split at CRLF, without the blank line that ends it.
std::vector<std::string_view> head_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const auto end = head.find("\r\n");
    lines.push_back(head.substr(0, end));
    head = end == std::string_view::npos ? std::string_view{} : head.substr(end + 2);
  }
  while (!lines.empty() && lines.back().empty()) {
    lines.pop_back();
  }
  return lines;
}

bool is_range_field(std::string_view line) {
  return line.size() > 6 && line[5] == ':' && text::lower(line.substr(0, 5)) == "range";
}

// `head` without its Range fields: the gateway serves whole bodies (RFC 9110
// §14.2 lets a server ignore Range), so a relayed one is never sliced.
std::string without_range(std::string_view head, const std::vector<std::string_view>& lines) {
  if (std::none_of(lines.begin() + 1, lines.end(), is_range_field) || !head.ends_with("\r\n\r\n")) {
    return std::string(head);
  }
  std::string out;
  for (const std::string_view line : lines) {
    if (!is_range_field(line) || line.data() == lines.front().data()) {
      out.append(line).append("\r\n");
    }
  }
  return out + "\r\n";
}

Rejection too_large(int status, std::string message) {
  return {status, std::string(error_type_for(status)), std::move(message), std::nullopt, false};
}

Rejection long_request_line(const HeadLimits& limits) {
  return too_large(414, fmt::format("the request line is longer than {} bytes", limits.max_line));
}

Rejection large_head(const HeadLimits& limits) {
  return too_large(431, fmt::format("request headers are larger than the limit ({} fields of up to {} "
                                    "bytes, {} bytes in all)",
                                    limits.max_fields, limits.max_line, limits.max_bytes));
}

std::optional<Rejection> check_sizes(const std::vector<std::string_view>& lines, std::size_t bytes,
                                     const HeadLimits& limits) {
  if (lines.front().size() > limits.max_line) {
    return long_request_line(limits);
  }
  const bool long_field = std::any_of(lines.begin() + 1, lines.end(),
                                      [&](std::string_view line) { return line.size() > limits.max_line; });
  if (bytes > limits.max_bytes || lines.size() - 1 > limits.max_fields || long_field) {
    return large_head(limits);
  }
  return std::nullopt;
}
} // namespace

http::fields forward_headers(const http::fields& client) {
  const auto named = connection_named(client);
  http::fields out;
  for (const auto& field : client) {
    const std::string key = text::lower(field.name_string());
    if (forwarded(key) && !named.contains(key)) {
      out.insert(field.name_string(), field.value());
    }
  }
  return out;
}

http::fields relay_headers(const http::fields& upstream) {
  const auto named = connection_named(upstream);
  http::fields out;
  for (const auto& field : upstream) {
    const std::string key = text::lower(field.name_string());
    if (!is_hop_by_hop(key) && !never_relayed(key) && !named.contains(key)) {
      out.insert(field.name_string(), field.value());
    }
  }
  return out;
}

std::expected<std::string, CredentialProblem> presented_token(const Request& req) {
  const auto authorizations = req.header_count("Authorization");
  const auto api_keys = req.header_count("x-api-key");
  if (authorizations > 1 || api_keys > 1) {
    return std::unexpected(
        ambiguous(fmt::format("{} Authorization and {} x-api-key headers", authorizations, api_keys)));
  }
  std::optional<std::string> bearer;
  if (authorizations == 1) {
    auto token = bearer_token(req.header("Authorization"));
    if (!token) {
      return propagate(token);
    }
    bearer = std::move(*token);
  }
  const std::string key = req.header("x-api-key");
  if (bearer && !key.empty() && key != *bearer) {
    return std::unexpected(ambiguous("Authorization and x-api-key carry different tokens"));
  }
  if (bearer || !key.empty()) {
    return bearer ? *bearer : key;
  }
  if (authorizations == 1) {
    return std::unexpected(CredentialProblem{"missing",
                                             "no token presented (Authorization: Bearer is empty); "
                                             "send Authorization: Bearer <token> or x-api-key"});
  }
  return std::unexpected(
      CredentialProblem{"missing", "no credentials: send Authorization: Bearer <token> or x-api-key"});
}

void write_rejection(Response& res, const Rejection& rejection, const std::string& request_id) {
  res.status = rejection.status;
  res.set_header("request-id", request_id);
  if (rejection.status == 401) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  }
  if (rejection.retry_after) {
    res.set_header("retry-after", std::to_string(*rejection.retry_after));
  }
  // An expired, revoked or unauthorized token never becomes valid by
  // retrying (Claude Code retries a 401 for minutes without this).
  if (!rejection.should_retry || rejection.status == 401 || rejection.status == 403) {
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
  case 408:
    return "timeout_error";
  case 414:
  case 431:
    return "request_too_large";
  default:
    return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
  }
}

std::optional<Rejection> check_partial_head(std::string_view partial, const HeadLimits& limits) {
  if (partial.find('\n') == std::string_view::npos && partial.size() > limits.max_line) {
    return long_request_line(limits);
  }
  if (partial.size() > limits.max_bytes) {
    return large_head(limits);
  }
  return std::nullopt;
}

std::expected<std::string, Rejection> check_request_head(std::string_view head, const HeadLimits& limits) {
  const auto lines = head_lines(head);
  if (lines.empty()) {
    return std::unexpected(bad_head("the request line is missing"));
  }
  if (auto too_big = check_sizes(lines, head.size(), limits)) {
    return std::unexpected(*too_big);
  }
  if (auto bad = check_request_line(lines.front())) {
    return std::unexpected(*bad);
  }
  Framing framing;
  for (auto line = lines.begin() + 1; line != lines.end(); ++line) {
    if (auto bad = check_field(*line, framing)) {
      return std::unexpected(*bad);
    }
  }
  if (auto bad = check_framing(framing)) {
    return std::unexpected(*bad);
  }
  std::string out = without_range(head, lines);
  if (framing.lengths == 0 && framing.encodings == 0 && out.ends_with("\r\n\r\n")) {
    out.insert(out.size() - 2, "Content-Length: 0\r\n");
  }
  return out;
}

std::optional<std::string> check_target_path(std::string_view target) {
  if (target.find('#') != std::string_view::npos) {
    return "the request target has a fragment (#); send the path and query only";
  }
  if (!target.starts_with('/')) {
    return std::nullopt;
  }
  const std::string_view path = target.substr(0, target.find('?'));
  auto why = check_escapes(path);
  why = why ? why : check_segments(path);
  if (!why) {
    return std::nullopt;
  }
  const std::string_view shown = path.substr(0, 200);
  return fmt::format("the request path {}{} is not canonical ({}); send the path as it is routed, e.g. "
                     "/v1/messages/count_tokens",
                     shown, shown.size() < path.size() ? "..." : "", *why);
}

BodyFraming body_framing(std::string_view checked_head) {
  BodyFraming framing;
  for (const std::string_view line : head_lines(checked_head)) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    const std::string name = text::lower(line.substr(0, colon));
    const std::string_view value = text::trim(line.substr(colon + 1));
    if (name == "content-length") {
      std::from_chars(value.data(), value.data() + value.size(), framing.length);
    } else if (name == "transfer-encoding") {
      framing.chunked = text::lower(value) == "chunked";
    }
  }
  return framing;
}

} // namespace claudegate::proxy
