#pragma once
// A Redis reply, owned (copied out of hiredis' buffer before the callback returns).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sagaflow::store {

struct Reply {
  enum class Type : std::uint8_t { nil, integer, string, array, status, error };

  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;              // string, status and error replies
  std::vector<Reply> elements;  // array replies

  bool is_nil() const noexcept { return type == Type::nil; }
  bool is_error() const noexcept { return type == Type::error; }
  bool is_array() const noexcept { return type == Type::array; }
  bool is_string() const noexcept { return type == Type::string || type == Type::status; }
  // The integer of an integer reply, or of a string reply holding a decimal integer.
  bool as_int(std::int64_t& out) const noexcept;
};

}  // namespace sagaflow::store
