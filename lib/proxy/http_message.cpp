// SPDX-License-Identifier: Apache-2.0
#include "http_message.hpp"

#include <boost/beast/core/string.hpp>

#include <charconv>

namespace claudegate::proxy {

namespace {

std::string first_value(const http::fields& fields, std::string_view name) {
  const auto it = fields.find(name);
  return it == fields.end() ? std::string{} : std::string(it->value());
}

} // namespace

std::string Request::header(std::string_view name) const {
  return first_value(headers, name);
}

std::size_t Request::header_count(std::string_view name) const {
  return headers.count(name);
}

std::string Request::param(std::string_view name) const {
  const auto it = params.find(std::string(name));
  return it == params.end() ? std::string{} : it->second;
}

std::size_t Request::param_count(std::string_view name) const {
  return params.count(std::string(name));
}

void Response::set_header(std::string_view name, std::string_view value) {
  headers.set(name, value);
}

std::string Response::header(std::string_view name) const {
  return first_value(headers, name);
}

bool Response::has_header(std::string_view name) const {
  return headers.find(name) != headers.end();
}

void Response::set_content(std::string body_, std::string_view content_type) {
  body = std::move(body_);
  headers.set(http::field::content_type, content_type);
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    unsigned value = 0;
    if (c == '%' && i + 2 < text.size()) {
      const char* first = text.data() + i + 1;
      const auto [end, ec] = std::from_chars(first, first + 2, value, 16);
      if (ec == std::errc{} && end == first + 2) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view query) {
  std::multimap<std::string, std::string> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    params.emplace(percent_decode(pair.substr(0, eq), true),
                   eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1), true));
  }
  return params;
}

void add_form_params(Request& request) {
  const std::string type = request.header("Content-Type");
  const std::string_view media = std::string_view(type).substr(0, type.find(';'));
  if (!boost::beast::iequals(boost::beast::string_view(media.data(), media.size()),
                             "application/x-www-form-urlencoded")) {
    return;
  }
  for (auto& param : parse_query(request.body)) {
    request.params.insert(std::move(param));
  }
}

} // namespace claudegate::proxy
