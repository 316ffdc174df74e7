// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/message_request.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

namespace claudegate::proxy {

namespace {

using json::Json;

// Images cost at most about 1600 tokens whatever their encoded size.
constexpr std::int64_t k_image_tokens = 1600;
// Base64 PDF pages cost far fewer tokens than their bytes; charge this many bytes per token.
constexpr std::uint64_t k_document_bytes_per_token = 32;
constexpr std::int64_t k_tokens_per_message = 8;
constexpr std::uint64_t k_bytes_per_token = 3;

// Running totals of the estimate: text bytes, and tokens charged directly.
struct Estimate {
  std::uint64_t bytes = 0;
  std::int64_t tokens = 0;
  std::string unbounded; // the first input met that the body cannot bound

  void unbounded_by(std::string why) {
    if (unbounded.empty()) {
      unbounded = std::move(why);
    }
  }
};

std::string type_of(const Json& block) {
  const auto it = block.find("type");
  return it != block.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// Base64 payloads, signatures and markers are not text the model reads as tokens.
bool skipped_member(const std::string& key) {
  return key == "data" || key == "signature" || key == "type" || key == "cache_control";
}

void add_content(Estimate& estimate, const Json& content);

// A document's text or content source counts as text; a base64 (PDF) or URL
// source is charged by size, as PDF pages cost far fewer tokens than their bytes.
void add_document(Estimate& estimate, const Json& block) {
  static const Json k_empty = Json::object();
  const auto found = block.find("source");
  const Json& source = found != block.end() && found->is_object() ? *found : k_empty;
  const std::string kind = type_of(source);
  if (kind == "text" || kind == "content") {
    add_content(estimate, source.value(kind == "text" ? "data" : "content", Json()));
  } else {
    if (kind == "url" || kind == "file") { // fetched by the API: no size to see here
      estimate.unbounded_by(fmt::format("a document with source type \"{}\"", kind));
    }
    const auto data = source.find("data");
    const std::uint64_t size =
        data != source.end() && data->is_string() ? data->get_ref<const std::string&>().size() : 0;
    estimate.tokens +=
        std::max<std::int64_t>(k_image_tokens, static_cast<std::int64_t>(size / k_document_bytes_per_token));
  }
  for (const auto& [key, value] : block.items()) {
    if (key != "source" && !skipped_member(key)) {
      add_content(estimate, value);
    }
  }
}

void add_object(Estimate& estimate, const Json& object) {
  const std::string type = type_of(object);
  if (type == "image") {
    estimate.tokens += k_image_tokens;
    return;
  }
  if (type == "document") {
    add_document(estimate, object);
    return;
  }
  if (type == "container_upload") {
    estimate.unbounded_by("a container_upload block");
  }
  for (const auto& [key, value] : object.items()) {
    if (!skipped_member(key)) {
      estimate.bytes += key.size();
      add_content(estimate, value);
    }
  }
}

// Text of any content shape: a string, an array of blocks, a block, tool input.
void add_content(Estimate& estimate, const Json& content) {
  if (content.is_string()) {
    estimate.bytes += content.get_ref<const std::string&>().size();
  } else if (content.is_array()) {
    for (const auto& item : content) {
      add_content(estimate, item);
    }
  } else if (content.is_object()) {
    add_object(estimate, content);
  } else if (!content.is_null()) {
    estimate.bytes += content.dump().size();
  }
}

// Server tools whose results enter the input with no bound the body shows.
bool is_server_tool(const Json& tool) {
  static constexpr std::string_view k_prefixes[] = {"web_search", "web_fetch", "code_execution",
                                                    "tool_search"};
  const std::string type = type_of(tool);
  return std::any_of(std::begin(k_prefixes), std::end(k_prefixes),
                     [&type](std::string_view prefix) { return type.starts_with(prefix); });
}

// Walks the top-level members of a JSON object text that is already known
// to be valid, giving each member's name and the byte span of its value.
class TopLevelMembers {
public:
  explicit TopLevelMembers(std::string_view text) : m_text(text) {}

  // The span [begin, end) of member `name`'s value, if the object has it.
  std::optional<std::pair<std::size_t, std::size_t>> find(std::string_view name) {
    skip_blanks();
    if (!take('{')) {
      return std::nullopt;
    }
    for (skip_blanks(); m_pos < m_text.size() && m_text[m_pos] == '"'; skip_blanks()) {
      const std::size_t key_begin = m_pos;
      skip_string();
      const std::string key = decode_key(m_text.substr(key_begin, m_pos - key_begin));
      skip_blanks();
      take(':');
      skip_blanks();
      const std::size_t value_begin = m_pos;
      skip_value();
      if (key == name) {
        return std::pair{value_begin, m_pos};
      }
      skip_blanks();
      take(',');
    }
    return std::nullopt;
  }

private:
  static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  void skip_blanks() {
    while (m_pos < m_text.size() && is_blank(m_text[m_pos])) {
      ++m_pos;
    }
  }

  bool take(char c) {
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }

  // From an opening quote to just past its closing quote.
  void skip_string() {
    for (++m_pos; m_pos < m_text.size() && m_text[m_pos] != '"'; ++m_pos) {
      if (m_text[m_pos] == '\\') {
        ++m_pos; // the escaped character is never the closing quote
      }
    }
    ++m_pos;
  }

  // A string, a container (strings inside may hold brackets) or a scalar.
  void skip_value() {
    int depth = 0;
    while (m_pos < m_text.size()) {
      const char c = m_text[m_pos];
      if (c == '"') {
        skip_string();
      } else if (c == '{' || c == '[') {
        ++depth;
        ++m_pos;
      } else if (c == '}' || c == ']') {
        if (depth == 0) {
          return;
        }
        --depth;
        ++m_pos;
      } else if (depth == 0 && (c == ',' || is_blank(c))) {
        return;
      } else {
        ++m_pos;
      }
      if (depth == 0 && (c == '"' || c == '}' || c == ']')) {
        return;
      }
    }
  }

  // A member name as the parser saw it ("max\u005ftokens" is max_tokens).
  static std::string decode_key(std::string_view literal) {
    if (literal.find('\\') == std::string_view::npos) {
      return std::string(literal.substr(1, literal.size() - 2));
    }
    const Json decoded = Json::parse(literal, nullptr, false);
    return decoded.is_string() ? decoded.get<std::string>() : std::string{};
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

// One walk over what the model reads: system, messages (8 tokens each plus
// their content) and tools (dumped whole, schema keys count); also notes
// server tools and MCP servers, whose input the body cannot bound.
Estimate walk_input(const Json& body) {
  Estimate estimate;
  if (const auto system = body.find("system"); system != body.end()) {
    add_content(estimate, *system);
  }
  if (const auto messages = body.find("messages"); messages != body.end() && messages->is_array()) {
    for (const auto& message : *messages) {
      estimate.tokens += k_tokens_per_message;
      if (message.is_object() && message.contains("content")) {
        add_content(estimate, message["content"]);
      }
    }
  }
  if (const auto tools = body.find("tools"); tools != body.end()) {
    estimate.bytes += tools->dump().size();
    if (const auto server = std::find_if(tools->begin(), tools->end(), is_server_tool);
        server != tools->end()) {
      estimate.unbounded_by(fmt::format("the server tool {}", type_of(*server)));
    }
  }
  if (const auto servers = body.find("mcp_servers"); servers != body.end() && !servers->empty()) {
    estimate.unbounded_by("MCP servers (mcp_servers)");
  }
  return estimate;
}

std::int64_t tokens_of(const Estimate& estimate) {
  const auto from_bytes =
      static_cast<std::int64_t>((estimate.bytes + k_bytes_per_token - 1) / k_bytes_per_token);
  return std::max<std::int64_t>(1, from_bytes + estimate.tokens);
}

std::unexpected<Error> invalid(std::string message) {
  return fail(Errc::malformed, std::move(message));
}

Result<void> read_model(const Json& body, MessageRequest& out) {
  const auto model = body.find("model");
  if (model == body.end()) {
    return invalid("model: Field required");
  }
  if (!model->is_string()) {
    return invalid("model: Input should be a valid string");
  }
  out.model = model->get<std::string>();
  return {};
}

Result<void> read_stream(const Json& body, MessageRequest& out) {
  const auto stream = body.find("stream");
  if (stream == body.end() || stream->is_null()) {
    return {};
  }
  if (!stream->is_boolean()) {
    return invalid("stream: Input should be a valid boolean");
  }
  out.stream = stream->get<bool>();
  return {};
}

Result<void> read_max_tokens(const Json& body, MessageRequest& out) {
  const auto max_tokens = body.find("max_tokens");
  if (max_tokens == body.end() || max_tokens->is_null()) {
    return {};
  }
  if (max_tokens->is_number_unsigned()
      && max_tokens->get<std::uint64_t>()
             > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return invalid("max_tokens: Input should be a valid integer");
  }
  if (!max_tokens->is_number_integer()) {
    return invalid("max_tokens: Input should be a valid integer");
  }
  const auto value = max_tokens->get<std::int64_t>();
  if (value < 1) {
    return invalid("max_tokens: Input should be greater than or equal to 1");
  }
  out.max_tokens = value;
  return {};
}

} // namespace

Result<json::Json> parse_request_body(std::string_view body) {
  auto parsed = json::parse_object(body, {std::numeric_limits<std::size_t>::max(), k_max_request_depth});
  if (parsed) {
    return parsed;
  }
  const std::string& why = parsed.error().message;
  if (why.find("duplicate member name") != std::string::npos) {
    return invalid(
        fmt::format("request body has a {}; send each member once", why.substr(why.find("duplicate"))));
  }
  if (why.find("nesting deeper") != std::string::npos) {
    return invalid(fmt::format("request body nests deeper than {} levels", k_max_request_depth));
  }
  if (why.find("expected an object") != std::string::npos) {
    return invalid("Input should be a valid dictionary (the request body must be a JSON object)");
  }
  return invalid("request body is not valid JSON");
}

std::int64_t estimate_input_tokens(const json::Json& body) {
  return tokens_of(walk_input(body));
}

Result<MessageRequest> inspect_message_request(std::string_view body) {
  auto parsed = parse_request_body(body);
  if (!parsed) {
    return propagate(parsed);
  }
  MessageRequest request;
  for (const auto read : {read_model, read_stream, read_max_tokens}) {
    if (auto ok = read(*parsed, request); !ok) {
      return propagate(ok);
    }
  }
  Estimate estimate = walk_input(*parsed);
  request.input_estimate = tokens_of(estimate);
  request.unbounded_input = std::move(estimate.unbounded);
  return request;
}

std::string unbounded_input(const json::Json& body) {
  return walk_input(body).unbounded;
}

Result<std::string> with_max_tokens(std::string_view body, std::int64_t max_tokens) {
  const auto span = TopLevelMembers(body).find("max_tokens");
  if (!span) {
    return invalid("max_tokens: Field required");
  }
  std::string out;
  out.reserve(body.size() + 20);
  out.append(body.substr(0, span->first))
      .append(std::to_string(max_tokens))
      .append(body.substr(span->second));
  return out;
}

} // namespace claudegate::proxy
