#include "requests.hpp"

#include <exception>

#include "redlock/tools/text.hpp"
#include "validation.hpp"

namespace redlock::chatroom {
namespace {

using nlohmann::json;

// nlohmann's parse error, without the "last read: '...'" part that quotes
// the input: "syntax error while parsing value - invalid literal".
std::string parse_reason(const json::parse_error& e) {
  std::string what = e.what();
  const auto start = what.find(": ", what.find("parse error"));
  if (start != std::string::npos) what.erase(0, start + 2);
  const auto quote = what.find("; last read");
  if (quote != std::string::npos) what.erase(quote);
  return what;
}

Problem field_problem(const char* where, const std::string& field, const FieldProblem& p) {
  const json loc = json::array({where, field});
  switch (p.kind) {
    case FieldProblem::Kind::kEmpty:
      return {loc, "String should have at least 1 byte", "string_too_short", {{"min_length", 1}}};
    case FieldProblem::Kind::kTooLong:
      return {loc,
              "String should have at most " + std::to_string(p.max_bytes) + " bytes",
              "string_too_long",
              {{"max_length", p.max_bytes}}};
    case FieldProblem::Kind::kNotUtf8:
      return {loc, "Input should be a valid string, unable to parse raw data as a unicode string",
              "string_unicode", nullptr};
    case FieldProblem::Kind::kControlCharacter:
    case FieldProblem::Kind::kSlash:
      break;
  }
  return {loc, "Value error, " + p.message, "value_error", nullptr};
}

// The body as a JSON object, or the problems that keep it from being one.
tl::expected<json, Problems> body_object(std::string_view body) {
  if (!tools::is_valid_utf8(body)) {
    std::size_t pos = 0;
    while (pos < body.size() && tools::decode_utf8(body, pos)) {
    }
    return tl::make_unexpected(Problems{{json::array({"body", pos}),
                                         "JSON decode error: the body is not valid UTF-8",
                                         "json_invalid",
                                         {{"error", "invalid UTF-8 byte"}}}});
  }
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::parse_error& e) {
    return tl::make_unexpected(Problems{{json::array({"body", e.byte > 0 ? e.byte - 1 : 0}),
                                         "JSON decode error",
                                         "json_invalid",
                                         {{"error", parse_reason(e)}}}});
  } catch (const json::exception&) {
    // Not a syntax error: a number too large for a double (1e999) is
    // out_of_range. Its message quotes the number, so it is not passed on.
    return tl::make_unexpected(Problems{{json::array({"body"}),
                                         "JSON decode error",
                                         "json_invalid",
                                         {{"error", "a number is out of range"}}}});
  }
  if (!parsed.is_object()) {
    return tl::make_unexpected(
        Problems{{json::array({"body"}),
                  "Input should be a valid dictionary or object to extract fields from",
                  "model_attributes_type", nullptr}});
  }
  return parsed;
}

// body[field] as a string checked by `check`; a problem added otherwise.
std::optional<std::string> string_field(const json& body, const std::string& field,
                                        std::optional<FieldProblem> (*check)(std::string_view),
                                        Problems& problems) {
  const auto it = body.find(field);
  if (it == body.end()) {
    problems.push_back({json::array({"body", field}), "Field required", "missing", nullptr});
    return std::nullopt;
  }
  if (!it->is_string()) {
    problems.push_back(
        {json::array({"body", field}), "Input should be a valid string", "string_type", nullptr});
    return std::nullopt;
  }
  std::string value = it->get<std::string>();
  if (auto problem = check(value)) {
    problems.push_back(field_problem("body", field, *problem));
    return std::nullopt;
  }
  return value;
}

}  // namespace

tl::expected<CreateRoomRequest, Problems> parse_create_room(std::string_view body) {
  auto object = body_object(body);
  if (!object) return tl::make_unexpected(std::move(object.error()));
  Problems problems;
  auto name = string_field(*object, "name", room_name_field_problem, problems);
  if (!problems.empty()) return tl::make_unexpected(std::move(problems));
  return CreateRoomRequest{std::move(*name)};
}

tl::expected<NewMessageRequest, Problems> parse_new_message(std::string_view body) {
  auto object = body_object(body);
  if (!object) return tl::make_unexpected(std::move(object.error()));
  Problems problems;
  auto author = string_field(*object, "author", author_field_problem, problems);
  auto text = string_field(*object, "text", text_field_problem, problems);
  if (!problems.empty()) return tl::make_unexpected(std::move(problems));
  return NewMessageRequest{std::move(*author), std::move(*text)};
}

Problems path_name_problems(std::string_view name) {
  if (auto problem = room_name_field_problem(name))
    return {field_problem("path", "name", *problem)};
  return {};
}

tl::expected<std::size_t, Problems> parse_limit(std::optional<std::string_view> text,
                                                std::size_t fallback, std::size_t max) {
  if (!text) return fallback;
  const json loc = json::array({"query", "limit"});
  const bool digits = !text->empty() && text->size() <= 9 &&
                      text->find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits) {
    return tl::make_unexpected(
        Problems{{loc, "Input should be a valid integer, unable to parse string as an integer",
                  "int_parsing", nullptr}});
  }
  const std::size_t value = std::stoul(std::string(*text));
  if (value < 1) {
    return tl::make_unexpected(Problems{
        {loc, "Input should be greater than or equal to 1", "greater_than_equal", {{"ge", 1}}}});
  }
  if (value > max) {
    return tl::make_unexpected(
        Problems{{loc,
                  "Input should be less than or equal to " + std::to_string(max),
                  "less_than_equal",
                  {{"le", max}}}});
  }
  return value;
}

std::string json_text(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string problems_body(const Problems& problems) {
  json list = json::array();
  for (const auto& p : problems) {
    json entry = {{"loc", p.loc}, {"msg", p.msg}, {"type", p.type}};
    if (!p.ctx.is_null()) entry["ctx"] = p.ctx;
    list.push_back(std::move(entry));
  }
  return json_text(json{{"detail", list}});
}

std::string detail_body(std::string_view text) { return json_text(json{{"detail", text}}); }

}  // namespace redlock::chatroom
