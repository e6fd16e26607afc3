#include "store/parking.hpp"

#include <memory>
#include <utility>
#include <vector>

#include "store/impl/scripts.hpp"
#include "store/impl/sum_hashes.hpp"
#include "store/keyspace.hpp"

namespace sagaflow::store {
namespace {

// {order_id, parked_at} or nil.
Result<std::optional<ParkedStart>> parse_claim(Result<Reply> r) {
  if (!r.ok()) return std::move(r).error();
  const Reply& reply = r.value();
  if (reply.is_error()) return make_error(Errc::internal, "claim_parked.lua: " + reply.str);
  if (reply.is_nil() || !reply.is_array()) return std::optional<ParkedStart>{};
  if (reply.elements.size() != 2) {
    return make_error(Errc::internal, "claim_parked.lua: unexpected reply");
  }
  ParkedStart p;
  p.order_id = OrderId(reply.elements[0].str);
  std::int64_t at = 0;
  if (!reply.elements[1].as_int(at)) at = std::atoll(reply.elements[1].str.c_str());
  p.parked_at = at;
  return std::optional<ParkedStart>(std::move(p));
}

}  // namespace

Parking::Parking(RedisClient& redis, int partitions, Millis timeout_ms)
    : redis_(redis),
      partitions_(partitions < 1 ? 1 : partitions),
      keyspace_(partitions_),
      timeout_ms_(timeout_ms) {
  script_ = redis_.register_script("claim_parked.lua", std::string(impl::kClaimParkedScript));
}

void Parking::counts(CountsCallback done) {
  std::vector<std::string> keys;
  for (int p = 0; p < partitions_; ++p) keys.push_back(Keyspace::parked_stores_key(p));
  impl::sum_hashes(redis_, std::move(keys), timeout_ms_,
                   [done = std::move(done)](Result<std::map<std::string, std::int64_t>> r) {
                     if (!r) return done(std::move(r));
                     std::erase_if(r.value(), [](const auto& kv) { return kv.second <= 0; });
                     done(std::move(r));
                   });
}

void Parking::release(const OrderId& order, std::function<void(Status)> done) {
  redis_.command(
      {"ZREM", Keyspace::parked_leases_key(keyspace_.partition_of(order)), order.str()},
      [done = std::move(done)](Result<Reply> r) {
        if (!done) return;
        if (!r.ok()) return done(std::move(r).error());
        done(Status::success());
      },
      timeout_ms_);
}

void Parking::claim_oldest(const StoreId& store, Millis lease_ms, ClaimCallback done) {
  struct Peek {
    std::optional<ParkedStart> best;
    int best_partition = -1;
    int remaining = 0;
    std::optional<Error> error;
    ClaimCallback done;
  };
  auto g = std::make_shared<Peek>();
  g->remaining = partitions_;
  g->done = std::move(done);
  const std::string lease = std::to_string(lease_ms < 1 ? 1 : lease_ms);
  for (int p = 0; p < partitions_; ++p) {
    redis_.eval(
        script_, {Keyspace::parked_key(p, store), Keyspace::parked_leases_key(p)}, {"peek", lease},
        [this, g, p, store, lease](Result<Reply> r) {
          auto peeked = parse_claim(std::move(r));
          if (!peeked.ok()) {
            if (!g->error) g->error = peeked.error();
          } else if (peeked.value() &&
                     (!g->best || peeked.value()->parked_at < g->best->parked_at)) {
            g->best = std::move(peeked.value());
            g->best_partition = p;
          }
          if (--g->remaining > 0) return;
          if (g->error) return g->done(std::move(*g->error));
          if (!g->best) return g->done(std::optional<ParkedStart>{});
          const int bp = g->best_partition;
          redis_.eval(
              script_, {Keyspace::parked_key(bp, store), Keyspace::parked_leases_key(bp)},
              {"claim", lease},
              [g](Result<Reply> claimed) { g->done(parse_claim(std::move(claimed))); },
              timeout_ms_);
        },
        timeout_ms_);
  }
}

}  // namespace sagaflow::store
