#pragma once
// The address guard of outgoing webhooks (CONTRACT.md section 9): addresses that an endpoint
// URL must not reach unless SAGAFLOW_DELIVERY_ALLOW_PRIVATE=1. Checked on the address actually
// connected to (the HTTP client's allow_address) and, at `endpoints add`, on a host that is an
// address literal.
//   IPv4: 0.0.0.0/8, 127/8, 10/8, 100.64/10, 169.254/16, 172.16/12, 192.168/16, 224/4, 240/4
//   IPv6: ::, ::1, fc00::/7, fe80::/10, ff00::/8, and IPv4-mapped (::ffff:a.b.c.d) and
//         IPv4-compatible forms of the IPv4 ranges
#include <optional>
#include <string_view>

struct sockaddr;

namespace sagaflow::delivery {

// True when the address is in one of the ranges above (AF_INET / AF_INET6; any other family
// is refused too, as private).
bool is_private_address(const sockaddr* address) noexcept;

// For a URL host: true / false when `host` is an IPv4 or IPv6 literal (with or without
// brackets), nullopt when it is a name (checked at connect time instead). The legacy IPv4
// forms that resolvers and curl also read as addresses ("127.1", "0x7f000001", "2130706433")
// count as literals.
std::optional<bool> is_private_literal(std::string_view host) noexcept;

}  // namespace sagaflow::delivery
