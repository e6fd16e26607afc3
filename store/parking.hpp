#pragma once
// Parked saga starts (CONTRACT.md section 5; store/README.md, "Parked starts").
//
// A start over its store's rate limit is committed as a saga in state `parked` by the normal
// apply script, which also keeps the index: per partition, one zset of parked orders per store
// (score = when it was parked) and a hash of counts per store. Every worker's scheduler reads
// the counts, takes a token from the store's bucket, leases the store's oldest parked start
// here, and starts it through the normal version-checked apply (which drops it from the index).
// A worker that dies between the lease and the start leaves a lease that runs out; any worker
// then takes the start over (its token is wasted: the limit admits fewer, never more).
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "store/keyspace.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store {

struct ParkedStart {
  OrderId order_id;
  Millis parked_at = 0;
};

class Parking final {
 public:
  using CountsCallback = std::function<void(Result<std::map<std::string, std::int64_t>>)>;
  using ClaimCallback = std::function<void(Result<std::vector<ParkedStart>>)>;

  Parking(RedisClient& redis, int partitions, Millis timeout_ms = 0);

  // Parked starts per store, summed over all partitions (one HGETALL per partition).
  void counts(CountsCallback done);
  // Leases up to n of the store's oldest parked starts that nobody holds, oldest first across
  // partitions: every partition's n oldest unleased are looked at (one script call each), the
  // n oldest of them are leased (one call per partition that has some). Fewer (or none) when
  // others hold leases or took them meanwhile.
  void claim_oldest(const StoreId& store, int n, Millis lease_ms, ClaimCallback done);
  // Gives leases back at once (the store's bucket refused the starts they were taken for):
  // one ZREM per partition.
  void release(const std::vector<OrderId>& orders, std::function<void(Status)> done = {});

 private:
  RedisClient& redis_;
  int partitions_;
  Keyspace keyspace_;
  Millis timeout_ms_;
  ScriptRef script_;
};

}  // namespace sagaflow::store
