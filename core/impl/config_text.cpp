#include "core/impl/config_text.hpp"

#include <charconv>

#include <fmt/format.h>

namespace sagaflow::core_impl {

Error bad(std::string_view key, std::string_view why) {
  return make_error(Errc::invalid_config, fmt::format("{}: {}", key, why));
}

Result<std::int64_t> parse_int(std::string_view key, std::string_view text, std::int64_t min,
                               std::int64_t max) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return bad(key, fmt::format("'{}' is not an integer", text));
  }
  if (v < min || v > max) {
    return bad(key, fmt::format("{} is out of range [{}, {}]", v, min, max));
  }
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace sagaflow::core_impl
