#pragma once
// One page of a newest-first listing over several sorted sets (the console's indexes: one per
// partition and status, per partition and reason, the dead letters'). Members are ordered by
// score (ms) descending, then member descending; a cursor is the last item of the previous
// page, so a page never repeats or skips an item that stayed in its set.
// Cost: two ZREVRANGEBYSCORE per set (the ties at the cursor's score, then the page below it),
// pipelined; nothing scans a set.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store::impl {

struct PageItem {
  std::string member;
  Millis score = 0;
  std::size_t set = 0;  // index into the keys the page was read from
};

struct Cursor {
  Millis score = 0;
  std::string member;
};

// "<score>:<member>"; nullopt when malformed.
std::optional<Cursor> parse_cursor(std::string_view text);
std::string format_cursor(const PageItem& item);

struct Page {
  std::vector<PageItem> items;
  std::optional<std::string> next_cursor;  // nullopt: this was the last page
};

void read_page(RedisClient& redis, std::vector<std::string> keys, std::size_t limit,
               std::optional<Cursor> after, Millis timeout_ms,
               std::function<void(Result<Page>)> done);

// Pure: merges per-set candidates (each newest first) into one page of `limit` after `after`.
Page merge_page(std::vector<std::vector<PageItem>> per_set, std::size_t limit,
                const std::optional<Cursor>& after);

}  // namespace sagaflow::store::impl
