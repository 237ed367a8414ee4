#include "validation.hpp"

#include "redlock/tools/text.hpp"

namespace redlock::chatroom {
namespace {

using Kind = FieldProblem::Kind;

std::optional<FieldProblem> check(std::string_view what, std::string_view value, std::size_t max,
                                  bool allow_layout, bool allow_slash) {
  const std::string field(what);
  if (value.empty()) return FieldProblem{Kind::kEmpty, field + " is empty", max};
  if (value.size() > max) {
    return FieldProblem{Kind::kTooLong, field + " is longer than " + std::to_string(max) + " bytes",
                        max};
  }
  std::size_t pos = 0;
  while (pos < value.size()) {
    const auto cp = tools::decode_utf8(value, pos);
    if (!cp) return FieldProblem{Kind::kNotUtf8, field + " is not valid UTF-8", max};
    const bool layout = *cp == '\n' || *cp == '\t' || *cp == '\r';
    if ((*cp < 0x20 && !(allow_layout && layout)) || (*cp >= 0x7F && *cp <= 0x9F)) {
      return FieldProblem{Kind::kControlCharacter, field + " contains a control character", max};
    }
    if (*cp == '/' && !allow_slash) {
      return FieldProblem{Kind::kSlash, field + " contains '/'", max};
    }
  }
  return std::nullopt;
}

std::optional<std::string> message_of(const std::optional<FieldProblem>& problem) {
  if (!problem) return std::nullopt;
  return problem->message;
}

}  // namespace

std::optional<FieldProblem> room_name_field_problem(std::string_view name) {
  return check("name", name, kMaxNameBytes, false, false);
}

std::optional<FieldProblem> author_field_problem(std::string_view author) {
  return check("author", author, kMaxAuthorBytes, false, true);
}

std::optional<FieldProblem> text_field_problem(std::string_view text) {
  return check("text", text, kMaxTextBytes, true, true);
}

std::optional<std::string> room_name_problem(std::string_view name) {
  return message_of(room_name_field_problem(name));
}

std::optional<std::string> author_problem(std::string_view author) {
  return message_of(author_field_problem(author));
}

std::optional<std::string> text_problem(std::string_view text) {
  return message_of(text_field_problem(text));
}

}  // namespace redlock::chatroom
