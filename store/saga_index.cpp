#include "store/saga_index.hpp"

#include <chrono>
#include <utility>

#include "store/impl/zset_page.hpp"
#include "store/keyspace.hpp"

namespace sagaflow::store {

void SagaIndex::page(const std::vector<std::string>& statuses, const std::string& reason,
                     std::size_t limit, const std::string& cursor,
                     std::function<void(Result<SagaIndexPage>)> done) {
  std::optional<impl::Cursor> after;
  if (!cursor.empty()) {
    after = impl::parse_cursor(cursor);
    if (!after) return done(make_error(Errc::usage, "cursor is not one this API gave out"));
  }
  std::vector<std::string> keys;
  std::vector<std::string> status_of_key;
  std::vector<std::string> finished_keys;
  for (int p = 0; p < partitions_; ++p) {
    if (!reason.empty()) {
      keys.push_back(Keyspace::reason_index_key(p, reason));
      finished_keys.push_back(keys.back());
      status_of_key.emplace_back();
      keys.push_back(Keyspace::live_reason_index_key(p, reason));
      status_of_key.emplace_back();
      continue;
    }
    for (const auto& s : statuses) {
      keys.push_back(Keyspace::status_index_key(p, s));
      if (s == "confirmed" || s == "failed") finished_keys.push_back(keys.back());
      status_of_key.push_back(s);
    }
  }
  // Sent ahead of the reads on the same connection: the reads see the trimmed lists.
  const Millis now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const std::string expired = "(" + std::to_string(now - finished_ttl_s_ * 1000);
  for (const auto& key : finished_keys) {
    redis_.command(
        {"ZREMRANGEBYSCORE", key, "-inf", expired}, [](Result<Reply>) {}, timeout_ms_);
  }
  impl::read_page(
      redis_, std::move(keys), limit, std::move(after), timeout_ms_,
      [status_of_key = std::move(status_of_key), done = std::move(done)](Result<impl::Page> r) {
        if (!r) return done(std::move(r).error());
        SagaIndexPage out;
        out.next_cursor = std::move(r->next_cursor);
        out.sagas.reserve(r->items.size());
        for (auto& item : r->items) {
          out.sagas.push_back(
              IndexedSaga{std::move(item.member), status_of_key[item.set], item.score});
        }
        done(std::move(out));
      });
}

}  // namespace sagaflow::store
