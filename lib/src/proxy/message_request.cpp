// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/message_request.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace claudegate::proxy {

namespace {

using json::Json;

// Images cost at most about 1600 tokens whatever their encoded size.
constexpr std::int64_t k_image_tokens = 1600;
// Base64 PDF pages cost far fewer tokens than their bytes; charge this many bytes per token.
constexpr std::uint64_t k_document_bytes_per_token = 32;
constexpr std::int64_t k_tokens_per_message = 8;
constexpr std::uint64_t k_bytes_per_token = 3;

class TooDeep : public std::runtime_error {
public:
  TooDeep() : std::runtime_error("too deep") {}
};

// Running totals of the estimate: text bytes, and tokens charged directly.
struct Estimate {
  std::uint64_t bytes = 0;
  std::int64_t tokens = 0;
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
  const auto guard = [](int depth, Json::parse_event_t event, Json&) {
    const bool opens =
        event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    if (opens && depth + 1 > k_max_request_depth) {
      throw TooDeep();
    }
    return true;
  };
  try {
    Json parsed = Json::parse(body, guard);
    if (!parsed.is_object()) {
      return invalid("Input should be a valid dictionary (the request body must be a JSON object)");
    }
    return parsed;
  } catch (const TooDeep&) {
    return invalid(fmt::format("request body nests deeper than {} levels", k_max_request_depth));
  } catch (const Json::parse_error& e) {
    return invalid(fmt::format("request body is not valid JSON (at byte {})", e.byte));
  } catch (const Json::exception&) {
    return invalid("request body is not valid JSON");
  }
}

std::int64_t estimate_input_tokens(const json::Json& body) {
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
    estimate.bytes += tools->dump().size(); // schemas' keys count here, so dump it whole
  }
  const auto from_bytes =
      static_cast<std::int64_t>((estimate.bytes + k_bytes_per_token - 1) / k_bytes_per_token);
  return std::max<std::int64_t>(1, from_bytes + estimate.tokens);
}

Result<MessageRequest> inspect_message_request(std::string_view body) {
  auto parsed = parse_request_body(body);
  if (!parsed) {
    return std::unexpected(parsed.error());
  }
  MessageRequest request;
  for (const auto read : {read_model, read_stream, read_max_tokens}) {
    if (auto ok = read(*parsed, request); !ok) {
      return std::unexpected(ok.error());
    }
  }
  request.input_estimate = estimate_input_tokens(*parsed);
  return request;
}

} // namespace claudegate::proxy
