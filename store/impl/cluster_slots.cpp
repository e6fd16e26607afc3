#include "store/impl/cluster_slots.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>

namespace sagaflow::store::impl {
namespace {

// CRC16-CCITT, polynomial 0x1021, initial value 0, no reflection: a 256-entry table.
constexpr std::array<std::uint16_t, 256> make_crc_table() noexcept {
  std::array<std::uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    auto crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000U) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021U)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
    table[static_cast<std::size_t>(i)] = crc;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (char c : bytes) {
    const auto index =
        static_cast<std::size_t>(((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xFFU);
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrcTable[index]);
  }
  return crc;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (x != b[i]) return false;
  }
  return true;
}

bool parse_int(std::string_view text, int& out) noexcept {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && p == text.data() + text.size();
}

}  // namespace

int key_slot(std::string_view key) noexcept {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) % kClusterSlots;
}

std::optional<std::string_view> routing_key(const std::vector<std::string>& argv) noexcept {
  if (argv.size() < 2) return std::nullopt;
  const std::string_view name = argv[0];
  for (std::string_view keyless :
       {"PING", "TIME", "INFO", "WAIT", "SCRIPT", "CLUSTER", "CLIENT", "DBSIZE", "CONFIG", "ECHO",
        "ASKING", "READONLY", "AUTH", "SELECT", "HELLO", "FLUSHALL", "FLUSHDB", "MULTI", "EXEC"}) {
    if (equals_ignoring_case(name, keyless)) return std::nullopt;
  }
  if (equals_ignoring_case(name, "EVALSHA") || equals_ignoring_case(name, "EVAL")) {
    int keys = 0;
    if (argv.size() < 4 || !parse_int(argv[2], keys) || keys < 1) return std::nullopt;
    return std::string_view(argv[3]);
  }
  if (equals_ignoring_case(name, "XREADGROUP") || equals_ignoring_case(name, "XREAD")) {
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
      if (equals_ignoring_case(argv[i], "STREAMS")) return std::string_view(argv[i + 1]);
    }
    return std::nullopt;
  }
  return std::string_view(argv[1]);
}

Result<std::vector<SlotRange>> parse_cluster_slots(const Reply& reply,
                                                   std::string_view asked_host) {
  auto bad = [](std::string_view why) {
    return make_error(Errc::internal, fmt::format("CLUSTER SLOTS: {}", why));
  };
  if (!reply.is_array()) return bad("not an array");
  std::vector<SlotRange> ranges;
  ranges.reserve(reply.elements.size());
  for (const Reply& entry : reply.elements) {
    if (!entry.is_array() || entry.elements.size() < 3)
      return bad("an entry is not [from, to, node]");
    const Reply& node = entry.elements[2];
    if (entry.elements[0].type != Reply::Type::integer ||
        entry.elements[1].type != Reply::Type::integer || !node.is_array() ||
        node.elements.size() < 2 || !(node.elements[0].is_string() || node.elements[0].is_nil()) ||
        node.elements[1].type != Reply::Type::integer) {
      return bad("an entry is not [from, to, [host, port, ...]]");
    }
    SlotRange r;
    r.first = static_cast<int>(entry.elements[0].integer);
    r.last = static_cast<int>(entry.elements[1].integer);
    if (r.first < 0 || r.last >= kClusterSlots || r.first > r.last) return bad("a bad slot range");
    r.host = node.elements[0].str;  // nil (unknown endpoint) reads as ""
    if (r.host.empty() || r.host == "?") r.host = std::string(asked_host);
    r.port = static_cast<int>(node.elements[1].integer);
    if (r.port <= 0 || r.port > 65535) return bad("a bad port");
    ranges.push_back(std::move(r));
  }
  return ranges;
}

std::optional<Redirect> parse_redirect(std::string_view error) noexcept {
  Redirect r;
  if (error.substr(0, 6) == "MOVED ") {
    error.remove_prefix(6);
  } else if (error.substr(0, 4) == "ASK ") {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos || !parse_int(error.substr(0, space), r.slot) || r.slot < 0 ||
      r.slot >= kClusterSlots) {
    return std::nullopt;
  }
  const std::string_view address = error.substr(space + 1);
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || !parse_int(address.substr(colon + 1), r.port) ||
      r.port <= 0 || r.port > 65535) {
    return std::nullopt;
  }
  r.host = std::string(address.substr(0, colon));
  return r;
}

}  // namespace sagaflow::store::impl
