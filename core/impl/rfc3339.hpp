#pragma once
// RFC 3339 date-time text (the envelope's "created").
#include <string_view>

namespace sagaflow::core_impl {

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), with a valid calendar date.
bool valid_rfc3339(std::string_view s);

}  // namespace sagaflow::core_impl
