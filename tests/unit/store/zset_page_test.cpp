// Paging newest-first over several sorted sets: no item repeated or skipped across pages.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "store/impl/zset_page.hpp"

using namespace sagaflow;
using namespace sagaflow::store::impl;

namespace {
PageItem item(Millis score, std::string member, std::size_t set) {
  return PageItem{std::move(member), score, set};
}
// What one set's two ZREVRANGEBYSCORE would return after `after` (newest first).
std::vector<PageItem> candidates(const std::vector<PageItem>& set,
                                 const std::optional<Cursor>& after) {
  std::vector<PageItem> out;
  for (const auto& i : set) {
    if (!after || i.score <= after->score) out.push_back(i);
  }
  return out;
}
}  // namespace

TEST_CASE("a cursor is '<ms>:<member>' and anything else is refused", "[store][page]") {
  const auto c = parse_cursor("1700000000123:ord-1:x");
  REQUIRE(c.has_value());
  CHECK(c->score == 1700000000123);
  CHECK(c->member == "ord-1:x");
  CHECK(format_cursor(item(c->score, c->member, 0)) == "1700000000123:ord-1:x");
  for (const char* bad : {"", ":", "12:", ":a", "x:a", "-5:a", "1.5:a", "12a:b"}) {
    INFO(bad);
    CHECK_FALSE(parse_cursor(bad).has_value());
  }
}

TEST_CASE("pages over several sets walk every item once, newest first", "[store][page]") {
  // Three sets with ties on scores across and within sets.
  const std::vector<std::vector<PageItem>> sets = {
      {item(50, "e", 0), item(40, "d", 0), item(40, "c", 0), item(10, "a", 0)},
      {item(40, "f", 1), item(30, "g", 1), item(30, "b", 1)},
      {item(60, "h", 2), item(40, "b2", 2), item(5, "z", 2)},
  };
  for (std::size_t limit : {1u, 2u, 3u, 10u}) {
    INFO("limit " << limit);
    std::vector<std::string> seen;
    std::optional<Cursor> after;
    for (int guard = 0; guard < 20; ++guard) {
      std::vector<std::vector<PageItem>> per_set;
      for (const auto& s : sets) per_set.push_back(candidates(s, after));
      const Page page = merge_page(per_set, limit, after);
      CHECK(page.items.size() <= limit);
      for (const auto& i : page.items) seen.push_back(i.member);
      if (!page.next_cursor) break;
      after = parse_cursor(*page.next_cursor);
      REQUIRE(after.has_value());
    }
    CHECK(seen == std::vector<std::string>{"h", "e", "f", "d", "c", "b2", "g", "b", "a", "z"});
  }
}

TEST_CASE("an item in two sets at once is listed once", "[store][page]") {
  const Page page = merge_page({{item(7, "x", 0)}, {item(7, "x", 1), item(3, "y", 1)}}, 5, {});
  REQUIRE(page.items.size() == 2);
  CHECK(page.items[0].member == "x");
  CHECK(page.items[1].member == "y");
  CHECK_FALSE(page.next_cursor.has_value());
}
