#pragma once
// SHA1 in lowercase hex, as Redis names a script (EVALSHA). OpenSSL underneath.
#include <string>
#include <string_view>

namespace sagaflow::store::impl {

std::string sha1_hex(std::string_view data);

}  // namespace sagaflow::store::impl
