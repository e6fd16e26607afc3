#pragma once
// Outgoing webhook deliveries and endpoints in Redis (CONTRACT.md section 9; README.md,
// "Outgoing deliveries"). The records are opaque text here (delivery/ encodes them); this
// layer owns the keys, the scripts and which step is atomic.
//
// An event lives in partition p = fnv1a64(event_id) mod P, and every key of one step carries
// the tag {p}:
//   sagaflow:{p}:dlv:<event_id>  hash   body, type, created, <endpoint id> -> delivery record;
//                                       TTL = dedup TTL; its existence is the dedup mark
//   sagaflow:{p}:dlv_due         zset   "<endpoint id>:<event_id>" -> due (ms, Redis TIME)
//   sagaflow:{p}:dlv_log         zset   event_id -> created (ms); bounded (oldest finished
//                                       dropped; a pending one is never dropped)
//   sagaflow:{p}:dlv_seen:<event_id>  string, TTL = dedup TTL: the dedup mark
// Endpoints: the hash sagaflow:endpoints (id -> JSON), and per endpoint its breaker state
// sagaflow:ep:{<id>}:breaker (a string, compare-and-set).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store {

inline constexpr std::string_view kEndpointsKey = "sagaflow:endpoints";

struct DueDelivery {
  std::string endpoint_id;
  std::string event_id;
  std::string body;
  std::string record;
};

struct DeliveriesOptions {
  int partitions = 16;
  std::int64_t ttl_s = 86400;      // records and dedup marks (SAGAFLOW_DEDUP_TTL_S)
  std::int64_t log_max = 1000000;  // events kept in the log, all partitions together
  Millis timeout_ms = 0;           // per call; 0: the client's default
};

class Deliveries final {
 public:
  Deliveries(RedisClient& redis, DeliveriesOptions options);

  int partition_of(std::string_view event_id) const noexcept;
  int partitions() const noexcept { return options_.partitions; }

  // Records one event's deliveries (endpoint id -> initial record), due now, with the dedup
  // mark: done(true) when recorded, done(false) when the event was recorded before.
  void record(const std::string& event_id, const std::string& type, const std::string& body,
              const std::vector<std::pair<std::string, std::string>>& records,
              std::function<void(Result<bool>)> done);
  // Up to `limit` due deliveries of one partition, each leased for `lease_ms`.
  void claim_due(int partition, int limit, Millis lease_ms,
                 std::function<void(Result<std::vector<DueDelivery>>)> done);
  // Writes a delivery's record and its next due time (0: not due again), if the record is still
  // `expected` (as the writer read it; empty: no check), and keeps the event at least the TTL
  // past that due time. done(false) when the event is gone or the record changed meanwhile.
  void update(const std::string& event_id, const std::string& endpoint_id,
              const std::string& record, Millis due_ms, const std::string& expected,
              std::function<void(Result<bool>)> done);
  // Moves a claimed delivery's due time (waiting for a breaker, a rate limit, an endpoint),
  // keeping the event at least the TTL past it.
  void postpone(const std::string& event_id, const std::string& endpoint_id, Millis due_ms,
                Millis now_ms);
  // Whether the endpoint exists (a worker whose cache misses it asks before dropping).
  void has_endpoint(const std::string& id, std::function<void(Result<bool>)> done);

  // Every field of an event's hash (empty: no such event).
  void get(const std::string& event_id,
           std::function<void(Result<std::map<std::string, std::string>>)> done);
  // The newest `limit` events of the log over all partitions, newest first, with their hashes.
  using Logged = std::pair<std::string, std::map<std::string, std::string>>;
  void recent(int limit, std::function<void(Result<std::vector<Logged>>)> done);
  // Deliveries waiting (due entries), summed over the partitions.
  void waiting(std::function<void(Result<std::int64_t>)> done);

  // Endpoints: id -> JSON.
  void endpoints(std::function<void(Result<std::map<std::string, std::string>>)> done);
  void put_endpoint(const std::string& id, const std::string& json,
                    std::function<void(Status)> done);
  void remove_endpoint(const std::string& id, std::function<void(Result<bool>)> done);
  // Breaker state text ("" = none) and compare-and-set: done(true) written, done(false) lost.
  void breaker(const std::string& endpoint_id, std::function<void(Result<std::string>)> done);
  void set_breaker(const std::string& endpoint_id, const std::string& expected,
                   const std::string& next, std::function<void(Result<bool>)> done);
  // The breaker states of many endpoints at once ("" = none).
  void breakers(const std::vector<std::string>& endpoint_ids,
                std::function<void(Result<std::vector<std::string>>)> done);

  static std::string event_key(int p, std::string_view event_id);
  static std::string seen_key(int p, std::string_view event_id);
  static std::string due_key(int p);
  static std::string log_key(int p);
  static std::string breaker_key(std::string_view endpoint_id);

 private:
  RedisClient& redis_;
  DeliveriesOptions options_;
  ScriptRef record_;
  ScriptRef claim_;
  ScriptRef update_;
  ScriptRef cas_;
};

}  // namespace sagaflow::store
