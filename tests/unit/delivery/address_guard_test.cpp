// The address guard: every private or reserved range of CONTRACT.md section 9 refused, edges
// included, in IPv4, IPv6, IPv4-mapped and IPv4-compatible forms; public addresses allowed.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "delivery/address_guard.hpp"

using namespace sagaflow::delivery;

namespace {

// is_private_address() on the socket address of a textual IPv4 or IPv6 address.
bool guard(const std::string& text) {
  sockaddr_storage storage{};
  if (text.find(':') == std::string::npos) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(443);
    REQUIRE(inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1);
    std::memcpy(&storage, &in, sizeof in);
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(443);
    REQUIRE(inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1);
    std::memcpy(&storage, &in6, sizeof in6);
  }
  return is_private_address(static_cast<const sockaddr*>(static_cast<const void*>(&storage)));
}

struct Case {
  const char* address;
  bool is_private;
};

// For each IPv4 range: its first and last address (inside) and the neighbours (outside).
const std::vector<Case> kIpv4Edges = {
    {"0.0.0.0", true},
    {"0.255.255.255", true},
    {"1.0.0.0", false},
    {"126.255.255.255", false},
    {"127.0.0.0", true},
    {"127.255.255.255", true},
    {"128.0.0.0", false},
    {"9.255.255.255", false},
    {"10.0.0.0", true},
    {"10.255.255.255", true},
    {"11.0.0.0", false},
    {"100.63.255.255", false},
    {"100.64.0.0", true},
    {"100.127.255.255", true},
    {"100.128.0.0", false},
    {"169.253.255.255", false},
    {"169.254.0.0", true},
    {"169.254.255.255", true},
    {"169.255.0.0", false},
    {"172.15.255.255", false},
    {"172.16.0.0", true},
    {"172.31.255.255", true},
    {"172.32.0.0", false},
    {"192.167.255.255", false},
    {"192.168.0.0", true},
    {"192.168.255.255", true},
    {"192.169.0.0", false},
    {"223.255.255.255", false},
    {"224.0.0.0", true},
    {"239.255.255.255", true},
    {"240.0.0.0", true},
    {"255.255.255.255", true},
    // Public addresses
    {"8.8.8.8", false},
    {"1.1.1.1", false},
    {"93.184.216.34", false},
};

}  // namespace

TEST_CASE("IPv4: every range's edges, inside and out", "[address_guard]") {
  for (const Case& c : kIpv4Edges) {
    INFO(c.address);
    CHECK(guard(c.address) == c.is_private);
  }
}

TEST_CASE("IPv6: ::, ::1, fc00::/7, fe80::/10, ff00::/8 and their neighbours", "[address_guard]") {
  const std::vector<Case> cases = {
      {"::", true},
      {"::1", true},
      // fc00::/7
      {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
      {"fc00::", true},
      {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"fe00::", false},
      // fe80::/10
      {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
      {"fe80::", true},
      {"fe80::1", true},
      {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"fec0::", false},
      // ff00::/8
      {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
      {"ff00::", true},
      {"ff02::1", true},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      // Public
      {"2606:4700:4700::1111", false},
      {"2001:4860:4860::8888", false},
      {"::2:0:0:1", false},  // 0:0:0:0:2:0:0:1 embeds no IPv4 address
  };
  for (const Case& c : cases) {
    INFO(c.address);
    CHECK(guard(c.address) == c.is_private);
  }
}

TEST_CASE("IPv4-mapped and IPv4-compatible forms follow their IPv4 address", "[address_guard]") {
  // Given the well-known loopback case
  CHECK(guard("::ffff:127.0.0.1"));
  CHECK(guard("::ffff:7f00:1"));  // the same address, written in hex
  CHECK_FALSE(guard("::ffff:8.8.8.8"));
  // Then every IPv4 edge gives the same answer in both embedded forms
  for (const Case& c : kIpv4Edges) {
    INFO(c.address);
    CHECK(guard(std::string("::ffff:") + c.address) == c.is_private);
    CHECK(guard(std::string("::") + c.address) == c.is_private);
  }
}

TEST_CASE("other address families and no address are refused", "[address_guard]") {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  CHECK(is_private_address(static_cast<const sockaddr*>(static_cast<const void*>(&un))));
  CHECK(is_private_address(nullptr));
}

TEST_CASE("a URL host: address literals are judged, names are left to connect time",
          "[address_guard]") {
  // Literals
  CHECK(is_private_literal("127.0.0.1") == true);
  CHECK(is_private_literal("10.1.2.3") == true);
  CHECK(is_private_literal("8.8.8.8") == false);
  CHECK(is_private_literal("::1") == true);
  CHECK(is_private_literal("[::1]") == true);
  CHECK(is_private_literal("[fe80::1]") == true);
  CHECK(is_private_literal("[::ffff:127.0.0.1]") == true);
  CHECK(is_private_literal("[::ffff:192.168.1.1]") == true);
  CHECK(is_private_literal("[2606:4700:4700::1111]") == false);
  CHECK(is_private_literal("2606:4700:4700::1111") == false);
  // IPv4 forms that resolvers and curl read as addresses too
  CHECK(is_private_literal("127.1") == true);
  CHECK(is_private_literal("0x7f000001") == true);
  CHECK(is_private_literal("2130706433") == true);
  CHECK(is_private_literal("0177.0.0.1") == true);
  CHECK(is_private_literal("134744072") == false);  // 8.8.8.8
  // Names
  CHECK_FALSE(is_private_literal("example.com").has_value());
  CHECK_FALSE(is_private_literal("localhost").has_value());
  CHECK_FALSE(is_private_literal("1e100.net").has_value());
  CHECK_FALSE(is_private_literal("cafe.de").has_value());
  CHECK_FALSE(is_private_literal("127.0.0.1.nip.io").has_value());
  CHECK_FALSE(is_private_literal("[example.com]").has_value());
  CHECK_FALSE(is_private_literal("").has_value());
}
