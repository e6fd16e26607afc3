#pragma once
// The console's lists of sagas (CONTRACT.md section 10): newest first, by status or by failure
// reason, paged by cursor, read from the indexes that apply.lua keeps with every change
// (Keyspace::status_index_key, reason_index_key). One page costs two ZREVRANGEBYSCORE per
// partition and index read, never a scan of the keyspace, whatever the number of sagas.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store {

struct IndexedSaga {
  std::string order_id;
  std::string status;  // the index's status; empty when listed by reason
  Millis updated_at = 0;
};

struct SagaIndexPage {
  std::vector<IndexedSaga> sagas;
  std::optional<std::string> next_cursor;
};

class SagaIndex final {
 public:
  // finished_ttl_s: how long a finished saga's record lives (SagaStoreOptions: the dedup TTL).
  SagaIndex(RedisClient& redis, int partitions, std::int64_t finished_ttl_s = 86400,
            Millis timeout_ms = 0)
      : redis_(redis),
        partitions_(partitions < 1 ? 1 : partitions),
        finished_ttl_s_(finished_ttl_s),
        timeout_ms_(timeout_ms) {}

  // Sagas in any of `statuses` (reason empty) or with failure reason `reason` (finished, then
  // compensating or stuck); `cursor` is "" for the first page or a next_cursor; an unreadable
  // cursor is Errc::usage. The lists of finished sagas are first trimmed of entries older than
  // their records' lifetime (the apply path trims them only when it adds one: a list nobody
  // adds to would otherwise keep naming expired records).
  void page(const std::vector<std::string>& statuses, const std::string& reason, std::size_t limit,
            const std::string& cursor, std::function<void(Result<SagaIndexPage>)> done);

 private:
  RedisClient& redis_;
  int partitions_;
  std::int64_t finished_ttl_s_;
  Millis timeout_ms_;
};

}  // namespace sagaflow::store
