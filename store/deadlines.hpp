#pragma once
// Saga deadlines: one zset per partition, sagaflow:{p}:deadlines, member order_id, score the
// due time in ms since the epoch. apply() sets or clears an order's deadline; any worker
// claims due ones (scripts/claim_deadlines.lua) and feeds a timeout event through apply().
//
// claim_due() takes up to `limit` members due by Redis' clock and moves each to now + lease_ms
// in the same script: among any number of claimers, each due deadline goes to exactly one of
// them per lease. The claimer's apply then replaces it (next deadline) or removes it; if the
// claimer dies, the order is due again when the lease ends.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "store/keyspace.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store {

struct DueDeadlines {
  Millis now_ms = 0;  // Redis' clock when claimed
  std::vector<OrderId> orders;
};

class Deadlines final {
 public:
  using ClaimCallback = std::function<void(Result<DueDeadlines>)>;

  explicit Deadlines(RedisClient& redis, Millis timeout_ms = 0);

  void claim_due(int partition, int limit, Millis lease_ms, ClaimCallback done);

  // Moves an order's deadline later, to `due_ms`, if it has one that is earlier (ZADD XX GT:
  // never adds a deadline, never brings one forward). For a command that reached the broker
  // late (re-sent by the outbox relay after an outage): its step's time counts from then.
  void extend(int partition, const OrderId& order, Millis due_ms, std::function<void(Status)> done);

 private:
  RedisClient& redis_;
  Millis timeout_ms_;
  ScriptRef script_;
};

}  // namespace sagaflow::store
