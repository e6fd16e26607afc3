// The address guard of outgoing webhooks (CONTRACT.md section 9).
#include "delivery/address_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

namespace sagaflow::delivery {

namespace {

// `a` in host byte order.
bool private_v4(std::uint32_t a) noexcept {
  struct Range {
    std::uint32_t net;
    int bits;
  };
  constexpr std::array<Range, 9> kRanges = {{
      {0x00000000, 8},   // 0.0.0.0/8
      {0x7f000000, 8},   // 127/8
      {0x0a000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10
      {0xa9fe0000, 16},  // 169.254/16
      {0xac100000, 12},  // 172.16/12
      {0xc0a80000, 16},  // 192.168/16
      {0xe0000000, 4},   // 224/4
      {0xf0000000, 4},   // 240/4
  }};
  for (const Range& r : kRanges) {
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - r.bits);
    if ((a & mask) == r.net) return true;
  }
  return false;
}

bool private_v4_bytes(const unsigned char* b) noexcept {
  return private_v4((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                    (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]});
}

bool private_v6(const unsigned char* b) noexcept {
  bool first_ten_zero = true;
  for (int i = 0; i < 10; ++i) first_ten_zero = first_ten_zero && b[i] == 0;
  if (first_ten_zero) {
    // ::ffff:a.b.c.d (IPv4-mapped)
    if (b[10] == 0xff && b[11] == 0xff) return private_v4_bytes(b + 12);
    // ::a.b.c.d (IPv4-compatible); :: and ::1 fall in 0.0.0.0/8 here, both private too
    if (b[10] == 0 && b[11] == 0) return private_v4_bytes(b + 12);
  }
  if ((b[0] & 0xfe) == 0xfc) return true;                  // fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10
  if (b[0] == 0xff) return true;                           // ff00::/8
  return false;
}

// Digits, hex digits, 'x' and dots only: what inet_aton's legacy forms ("127.1", "0x7f.1",
// "2130706433") are made of. A host like this is an address to resolvers and to curl.
bool looks_numeric_v4(std::string_view host) noexcept {
  if (host.empty() || host.front() < '0' || host.front() > '9') return false;
  for (char c : host) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == 'x' || c == 'X' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool is_private_address(const sockaddr* address) noexcept {
  if (address == nullptr) return true;
  if (address->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    return private_v4(ntohl(in.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    return private_v6(in6.sin6_addr.s6_addr);
  }
  return true;
}

std::optional<bool> is_private_literal(std::string_view host) noexcept {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() > 64) return std::nullopt;
  char text[65];
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';
  if (std::memchr(host.data(), '\0', host.size()) != nullptr) return std::nullopt;

  in6_addr a6{};
  if (inet_pton(AF_INET6, text, &a6) == 1) return private_v6(a6.s6_addr);
  in_addr a4{};
  if (inet_pton(AF_INET, text, &a4) == 1) return private_v4(ntohl(a4.s_addr));
  // The legacy IPv4 forms that getaddrinfo and curl also accept ("127.1", "0x7f000001").
  if (looks_numeric_v4(host) && inet_aton(text, &a4) != 0) return private_v4(ntohl(a4.s_addr));
  return std::nullopt;
}

}  // namespace sagaflow::delivery
