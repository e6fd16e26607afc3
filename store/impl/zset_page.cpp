#include "store/impl/zset_page.hpp"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include <fmt/format.h>

namespace sagaflow::store::impl {
namespace {

bool newer(const PageItem& a, const PageItem& b) {
  return a.score != b.score ? a.score > b.score : a.member > b.member;
}

bool after_cursor(const PageItem& item, const Cursor& c) {
  return item.score != c.score ? item.score < c.score : item.member < c.member;
}

// WITHSCORES reply: member, score, member, score...
Result<std::vector<PageItem>> items_of(const Reply& reply, std::size_t set) {
  if (reply.is_error()) return make_error(Errc::internal, "ZREVRANGEBYSCORE: " + reply.str);
  std::vector<PageItem> out;
  if (!reply.is_array()) return out;
  for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    PageItem item;
    item.member = reply.elements[i].str;
    const std::string& s = reply.elements[i + 1].str;
    double score = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), score);
    if (ec != std::errc()) return make_error(Errc::internal, "a sorted set score is not a number");
    item.score = static_cast<Millis>(score);
    item.set = set;
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

std::optional<Cursor> parse_cursor(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size())
    return std::nullopt;
  Cursor c;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + colon, c.score);
  if (ec != std::errc() || ptr != text.data() + colon || c.score < 0) return std::nullopt;
  c.member.assign(text.substr(colon + 1));
  return c;
}

std::string format_cursor(const PageItem& item) {
  return fmt::format("{}:{}", item.score, item.member);
}

Page merge_page(std::vector<std::vector<PageItem>> per_set, std::size_t limit,
                const std::optional<Cursor>& after) {
  std::vector<PageItem> all;
  for (auto& set : per_set) {
    for (auto& item : set) {
      if (after && !after_cursor(item, *after)) continue;
      all.push_back(std::move(item));
    }
  }
  std::sort(all.begin(), all.end(), newer);
  all.erase(std::unique(all.begin(), all.end(),
                        [](const PageItem& a, const PageItem& b) {
                          return a.score == b.score && a.member == b.member;
                        }),
            all.end());
  Page page;
  if (all.size() > limit) {
    all.resize(limit);
    page.next_cursor = format_cursor(all.back());
  }
  page.items = std::move(all);
  return page;
}

void read_page(RedisClient& redis, std::vector<std::string> keys, std::size_t limit,
               std::optional<Cursor> after, Millis timeout_ms,
               std::function<void(Result<Page>)> done) {
  struct State {
    std::vector<std::vector<PageItem>> per_set;
    std::size_t pending = 0;
    std::optional<Error> error;
    std::size_t limit = 0;
    std::optional<Cursor> after;
    std::function<void(Result<Page>)> done;
  };
  auto st = std::make_shared<State>();
  st->per_set.resize(keys.size());
  st->limit = limit;
  st->after = after;
  st->done = std::move(done);
  if (keys.empty()) return st->done(Page{});
  const std::string count = std::to_string(limit + 1);
  auto finish_one = [st](std::size_t set, Result<Reply> r) {
    if (!r) {
      if (!st->error) st->error = r.error();
    } else if (auto items = items_of(r.value(), set); !items) {
      if (!st->error) st->error = items.error();
    } else {
      auto& dst = st->per_set[set];
      for (auto& item : items.value()) dst.push_back(std::move(item));
    }
    if (--st->pending > 0) return;
    if (st->error) return st->done(*st->error);
    st->done(merge_page(std::move(st->per_set), st->limit, st->after));
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (after) {
      // The ties at the cursor's score (those after it by member are filtered in the merge).
      const std::string score = std::to_string(after->score);
      ++st->pending;
      redis.command(
          {"ZREVRANGEBYSCORE", keys[i], score, score, "WITHSCORES", "LIMIT", "0", "1000"},
          [finish_one, i](Result<Reply> r) { finish_one(i, std::move(r)); }, timeout_ms);
    }
    ++st->pending;
    const std::string max = after ? "(" + std::to_string(after->score) : std::string("+inf");
    redis.command(
        {"ZREVRANGEBYSCORE", keys[i], max, "-inf", "WITHSCORES", "LIMIT", "0", count},
        [finish_one, i](Result<Reply> r) { finish_one(i, std::move(r)); }, timeout_ms);
  }
}

}  // namespace sagaflow::store::impl
