#pragma once
// Reading one configuration value: the one-line invalid_config error naming the key, integers
// in a range, whitespace trimming. Shared by the key table (config.cpp) and the value parsers
// (config_values.cpp).
#include <cstdint>
#include <string_view>

#include "core/result.hpp"

namespace sagaflow::core_impl {

// "<key>: <why>", code invalid_config.
Error bad(std::string_view key, std::string_view why);
// A decimal integer in [min, max].
Result<std::int64_t> parse_int(std::string_view key, std::string_view text, std::int64_t min,
                               std::int64_t max);
// Without leading and trailing spaces, tabs and carriage returns.
std::string_view trim(std::string_view s);

}  // namespace sagaflow::core_impl
