#include "core/impl/json_walk.hpp"

#include <fmt/format.h>

namespace sagaflow::core_impl {
namespace {

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

Error malformed(simdjson::error_code e) {
  switch (e) {
    case simdjson::UTF8_ERROR:
      return make_error(Errc::malformed_json, "body is not valid UTF-8");
    case simdjson::EMPTY:
      return make_error(Errc::malformed_json, "body is empty");
    case simdjson::DEPTH_ERROR:
      return make_error(Errc::malformed_json,
                        fmt::format("JSON nested deeper than {} levels", kMaxDepth));
    case simdjson::UNCLOSED_STRING:
      return make_error(Errc::malformed_json, "body is not JSON: unclosed string");
    case simdjson::STRING_ERROR:
      return make_error(Errc::malformed_json,
                        "body is not JSON: bad string escape or control character");
    case simdjson::NUMBER_ERROR:
      return make_error(Errc::malformed_json, "body is not JSON: bad number");
    default:
      return make_error(Errc::malformed_json,
                        fmt::format("body is not JSON: {}", simdjson::error_message(e)));
  }
}

bool valid_json_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

simdjson::error_code walk(od::value v, int depth) {
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  switch (t) {
    case od::json_type::array: {
      od::array a;
      if (auto e = v.get_array().get(a)) return e;
      for (auto element : a) {
        od::value x;
        if (auto e = element.get(x)) return e;
        if (auto e = walk(x, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object o;
      if (auto e = v.get_object().get(o)) return e;
      for (auto field : o) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = walk(field.value(), depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number:
      return valid_json_number(trim_right(v.raw_json_token())) ? simdjson::SUCCESS
                                                               : simdjson::NUMBER_ERROR;
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::TAPE_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

simdjson::error_code read_scalar(od::value v, Seen& seen, int depth) {
  if (seen.kind != Seen::Kind::absent) seen.duplicate = true;
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t == od::json_type::string) {
    seen.kind = Seen::Kind::string;
    return v.get_string().get(seen.text);
  }
  if (t == od::json_type::number) {
    seen.kind = Seen::Kind::number;
    seen.text = trim_right(v.raw_json_token());
    (void)depth;
    return valid_json_number(seen.text) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
  }
  seen.kind = Seen::Kind::other;
  return walk(v, depth);
}

const char* value_end(const char* p, const char* end) {
  int depth = 0;
  bool in_string = false;
  for (; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (c == '\\') {
        ++p;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return p + 1;
    }
  }
  return end;
}

}  // namespace sagaflow::core_impl
