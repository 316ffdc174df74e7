// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/beast/http/fields.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// One HTTP request as the gateway's handlers see it (head checked, body
// read whole within the body limit) and the complete response they give.
// The server (http_server.cpp) parses into and serializes from these.
namespace claudegate::proxy {

namespace http = boost::beast::http;

struct Request {
  std::string method;                             // as sent; a HEAD is routed as its GET (see head_only)
  std::string target;                             // origin-form target exactly as sent, for forwarding
  std::string path;                               // the target's path, percent-decoded, for routing
  std::multimap<std::string, std::string> params; // the query, decoded ('+' is a space)
  std::vector<std::string> path_params;           // what a route's {param} segments matched
  http::fields headers;
  std::string body;
  std::string remote_addr;
  int remote_port = 0;
  bool head_only = false; // a HEAD: answer as the GET, without the body

  // The first value of header `name` (any case), or "" when absent.
  std::string header(std::string_view name) const;
  std::size_t header_count(std::string_view name) const;
  // The first value of query parameter `name`, or "" when absent.
  std::string param(std::string_view name) const;
  std::size_t param_count(std::string_view name) const;
};

struct Response {
  int status = 200;
  http::fields headers;
  std::string body;

  // Replace header `name` with `value`.
  void set_header(std::string_view name, std::string_view value);
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // The body and its Content-Type.
  void set_content(std::string body_, std::string_view content_type);
};

// `text` with its %XX escapes decoded (and '+' as a space when
// `plus_is_space`); a malformed escape is kept as it is.
std::string percent_decode(std::string_view text, bool plus_is_space);

// The query parameters of `query` (the part after '?'), decoded.
std::multimap<std::string, std::string> parse_query(std::string_view query);

// Add the fields of an application/x-www-form-urlencoded body to
// `request.params`, after those of the query; other bodies add nothing.
void add_form_params(Request& request);

} // namespace claudegate::proxy
