#include "store/reply.hpp"

#include <charconv>

namespace sagaflow::store {

bool Reply::as_int(std::int64_t& out) const noexcept {
  if (type == Type::integer) {
    out = integer;
    return true;
  }
  if (type != Type::string && type != Type::status) return false;
  const char* first = str.data();
  const char* last = first + str.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc{} && ptr == last && first != last;
}

}  // namespace sagaflow::store
