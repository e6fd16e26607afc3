#pragma once
// The dead-letter index (CONTRACT.md section 10): a broker queue cannot be paged or filtered
// without get-and-requeue scans, so every dead letter the broker confirmed is also recorded
// here (id, reason, detail, attempts, route, when, where the copy is, a body preview), newest
// first, by reason, bounded (the oldest leave the index, never the broker). The console lists
// and counts from it; a replay removes what it re-published. Keys (one hash tag, so each
// script runs in one Redis Cluster slot):
//   sagaflow:{dlq}:entries           hash  id -> the entry as JSON (the console API's object)
//   sagaflow:{dlq}:all               zset  id -> at (ms)
//   sagaflow:{dlq}:reason:<reason>   zset  id -> at (ms)
//   sagaflow:{dlq}:counts            hash  reason -> entries
//   sagaflow:{dlq}:reason_of         hash  id -> reason
// The broker's queue or topic stays the truth: an entry whose write was lost (a worker died
// between the broker's confirm and this write) is missing here and still in the broker, where
// `sagaflow dlq list` and a replay by reason find it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store {

struct DeadLetterEntry {
  std::string id;  // x-sagaflow-dead-letter-id of the copy
  std::string reason;
  std::string detail;
  std::int64_t attempts = 0;
  std::string route;
  Millis at = 0;
  std::string body_preview;  // the first bytes of the body (valid UTF-8 cut)
  std::string message_id;
  std::string where;  // the queue or topic holding the copy

  std::string to_json() const;
};

struct DeadLetterPage {
  std::vector<std::string> entries;  // each the JSON of a DeadLetterEntry
  std::optional<std::string> next_cursor;
};

inline constexpr std::size_t kBodyPreviewBytes = 256;

// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

// The first `max` bytes of `body`, cut back to a whole UTF-8 sequence.
std::string body_preview(std::string_view body, std::size_t max = kBodyPreviewBytes);

class DeadLetterIndex final {
 public:
  explicit DeadLetterIndex(RedisClient& redis, std::int64_t cap = 100000, Millis timeout_ms = 0);

  void add(const DeadLetterEntry& entry, std::function<void(Status)> done);
  // Newest first; reason empty: all. An unreadable cursor is Errc::usage.
  void page(const std::string& reason, std::size_t limit, const std::string& cursor,
            std::function<void(Result<DeadLetterPage>)> done);
  // The JSON of each id (nullopt: not in the index).
  void get(std::vector<std::string> ids,
           std::function<void(Result<std::vector<std::optional<std::string>>>)> done);
  // Up to `max` ids with that reason, oldest first.
  void ids_with_reason(const std::string& reason, std::size_t max,
                       std::function<void(Result<std::vector<std::string>>)> done);
  // Returns how many of the ids were in the index.
  void remove(std::vector<std::string> ids, std::function<void(Result<std::int64_t>)> done);
  // Entries per reason.
  void counts(std::function<void(Result<std::map<std::string, std::int64_t>>)> done);

 private:
  RedisClient& redis_;
  std::int64_t cap_;
  Millis timeout_ms_;
  ScriptRef script_;
};

}  // namespace sagaflow::store
