#pragma once
// Redis Cluster routing facts, pure (no I/O): the slot of a key, the key that routes a
// command, the slot map of a CLUSTER SLOTS reply, and MOVED / ASK redirections.
// Specification: https://redis.io/docs/reference/cluster-spec/ ("Key distribution model",
// "Redirection and resharding").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "store/reply.hpp"

namespace sagaflow::store::impl {

inline constexpr int kClusterSlots = 16384;

// CRC16-CCITT (XModem) of the key's hash tag (the bytes between the first '{' and the next
// '}', when not empty), else of the whole key, mod 16384.
int key_slot(std::string_view key) noexcept;

// The key that decides where a command goes; nullopt for commands without keys (PING, TIME,
// INFO, WAIT, SCRIPT, CLUSTER, ...), which any node may answer. EVAL / EVALSHA: the first key
// (none when numkeys is 0); XREAD / XREADGROUP: the first stream after STREAMS; else argv[1].
std::optional<std::string_view> routing_key(const std::vector<std::string>& argv) noexcept;

struct SlotRange {
  int first = 0;
  int last = 0;      // inclusive
  std::string host;  // of the range's primary; "", "?" or nil in the reply: the node that answered
  int port = 0;
};

// The ranges of a CLUSTER SLOTS reply (primaries only). An empty host is replaced by
// `asked_host`. Errors: Errc::internal for a reply of another shape.
Result<std::vector<SlotRange>> parse_cluster_slots(const Reply& reply, std::string_view asked_host);

struct Redirect {
  bool ask = false;  // ASK (this one command, after ASKING) or MOVED (the slot's new home)
  int slot = 0;
  std::string host;
  int port = 0;
};

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"; nullopt for any other error.
std::optional<Redirect> parse_redirect(std::string_view error) noexcept;

}  // namespace sagaflow::store::impl
