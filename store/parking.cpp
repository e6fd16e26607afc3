#include "store/parking.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/impl/scripts.hpp"
#include "store/impl/sum_hashes.hpp"
#include "store/keyspace.hpp"

namespace sagaflow::store {
namespace {

// {order_id, parked_at, ...} of a peek.
Result<std::vector<ParkedStart>> parse_peek(Result<Reply> r) {
  if (!r.ok()) return std::move(r).error();
  const Reply& reply = r.value();
  if (reply.is_error()) return make_error(Errc::internal, "claim_parked.lua: " + reply.str);
  std::vector<ParkedStart> out;
  if (!reply.is_array()) return out;
  if (reply.elements.size() % 2 != 0) {
    return make_error(Errc::internal, "claim_parked.lua: unexpected reply");
  }
  for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
    ParkedStart p;
    p.order_id = OrderId(reply.elements[i].str);
    std::int64_t at = 0;
    if (!reply.elements[i + 1].as_int(at)) at = std::atoll(reply.elements[i + 1].str.c_str());
    p.parked_at = at;
    out.push_back(std::move(p));
  }
  return out;
}

// Parked first, then by order id: the order in which a store's starts begin.
bool older(const ParkedStart& a, const ParkedStart& b) {
  return a.parked_at != b.parked_at ? a.parked_at < b.parked_at
                                    : a.order_id.str() < b.order_id.str();
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

void Parking::release(const std::vector<OrderId>& orders, std::function<void(Status)> done) {
  std::map<int, std::vector<std::string>> by_partition;
  for (const auto& o : orders) {
    auto& argv = by_partition[keyspace_.partition_of(o)];
    if (argv.empty()) {
      argv.push_back("ZREM");
      argv.push_back(Keyspace::parked_leases_key(keyspace_.partition_of(o)));
    }
    argv.push_back(o.str());
  }
  if (by_partition.empty()) {
    if (done) done(Status::success());
    return;
  }
  auto left = std::make_shared<std::size_t>(by_partition.size());
  auto failed = std::make_shared<std::optional<Error>>();
  for (auto& [p, argv] : by_partition) {
    redis_.command(
        std::move(argv),
        [left, failed, done](Result<Reply> r) {
          if (!r.ok() && !*failed) *failed = r.error();
          if (--*left > 0 || !done) return;
          if (*failed) return done(std::move(**failed));
          done(Status::success());
        },
        timeout_ms_);
  }
}

void Parking::claim_oldest(const StoreId& store, int n, Millis lease_ms, ClaimCallback done) {
  struct Claim {
    std::vector<std::pair<int, ParkedStart>> seen;  // (partition, start) of every peek
    std::unordered_map<std::string, Millis> parked_at;  // of the starts asked for
    std::vector<ParkedStart> leased;
    int remaining = 0;
    std::optional<Error> error;
    ClaimCallback done;
  };
  if (n < 1) n = 1;
  auto g = std::make_shared<Claim>();
  g->remaining = partitions_;
  g->done = std::move(done);
  const std::string lease = std::to_string(lease_ms < 1 ? 1 : lease_ms);
  auto claim = [this, g, store, lease, n] {
    if (g->error) return g->done(std::move(*g->error));
    auto& seen = g->seen;
    std::sort(seen.begin(), seen.end(),
              [](const auto& a, const auto& b) { return older(a.second, b.second); });
    if (seen.size() > static_cast<std::size_t>(n)) seen.resize(static_cast<std::size_t>(n));
    if (seen.empty()) return g->done(std::vector<ParkedStart>{});
    std::map<int, std::vector<std::string>> args;
    for (const auto& [p, start] : seen) {
      auto& a = args[p];
      if (a.empty()) a = {"claim", lease};
      a.push_back(start.order_id.str());
      g->parked_at.emplace(start.order_id.str(), start.parked_at);
    }
    g->remaining = static_cast<int>(args.size());
    for (auto& [p, a] : args) {
      redis_.eval(
          script_, {Keyspace::parked_key(p, store), Keyspace::parked_leases_key(p)}, std::move(a),
          [g](Result<Reply> r) {
            if (!r.ok()) {
              if (!g->error) g->error = r.error();
            } else if (r->is_error()) {
              if (!g->error) g->error = make_error(Errc::internal, "claim_parked.lua: " + r->str);
            } else if (r->is_array()) {
              for (const auto& e : r->elements) {
                const auto it = g->parked_at.find(e.str);
                if (it != g->parked_at.end()) g->leased.push_back({OrderId(e.str), it->second});
              }
            }
            if (--g->remaining > 0) return;
            if (g->error && g->leased.empty()) return g->done(std::move(*g->error));
            std::sort(g->leased.begin(), g->leased.end(), older);
            g->done(std::move(g->leased));
          },
          timeout_ms_);
    }
  };
  for (int p = 0; p < partitions_; ++p) {
    redis_.eval(
        script_, {Keyspace::parked_key(p, store), Keyspace::parked_leases_key(p)},
        {"peek", std::to_string(n)},
        [g, p, claim](Result<Reply> r) {
          auto peeked = parse_peek(std::move(r));
          if (!peeked.ok()) {
            if (!g->error) g->error = peeked.error();
          } else {
            for (auto& s : peeked.value()) g->seen.emplace_back(p, std::move(s));
          }
          if (--g->remaining == 0) claim();
        },
        timeout_ms_);
  }
}

}  // namespace sagaflow::store
