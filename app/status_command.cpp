// sagaflow status: the cluster-wide summary, read from Redis (sagas by status, rate-limited
// starts) and the broker (dead-letter depth: the sagaflow.dead queue on RabbitMQ; on Kafka the
// dead letters of topic sagaflow.dead not yet replayed, i.e. the sum over its partitions of the
// high watermark minus the committed offset of group sagaflow-dlq-replay, or minus the low
// watermark where it has none). An unreachable broker shows the depth as unknown (-1 in JSON).
// --json prints one JSON object for tools.
// sagaflow saga show ORDER_ID: one saga's record as one JSON object.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <string>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/redis_session.hpp"
#include "brokers/broker.hpp"
#include "core/envelope.hpp"
#include "sagas/saga_state.hpp"
#include "store/parking.hpp"
#include "store/saga_store.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

store::SagaStoreOptions store_options(const Config& c) {
  store::SagaStoreOptions o;
  o.partitions = c.redis_partitions;
  o.dedup_ttl_s = c.dedup_ttl_s;
  return o;
}

}  // namespace

int run_status(const Config& config, bool json) {
  RedisSession redis(config);
  store::SagaStore sagas(redis.client(), store_options(config));
  store::Parking parking(redis.client(), config.redis_partitions);
  std::map<std::string, std::int64_t> counts;
  std::map<std::string, std::int64_t> parked;
  std::int64_t rate_limited = 0;
  Error failure{Errc::internal, {}};
  bool failed = false;
  auto st = redis.run([&](std::function<void()> finish) {
    sagas.status_counts([&, finish](Result<std::map<std::string, std::int64_t>> r) {
      if (!r) {
        failed = true;
        failure = r.error();
        return finish();
      }
      counts = std::move(r.value());
      redis.client().command(
          {"GET", std::string(kRateLimitedKey)}, [&, finish](Result<store::Reply> g) {
            if (g && g->is_string())
              std::from_chars(g->str.data(), g->str.data() + g->str.size(), rate_limited);
            parking.counts([&, finish](Result<std::map<std::string, std::int64_t>> p) {
              if (p) parked = std::move(p.value());
              finish();
            });
          });
    });
  });
  if (!st || failed) {
    std::fprintf(stderr, "sagaflow status: cannot read Redis at %s:%d: %s\n",
                 config.redis.host.c_str(), config.redis.port,
                 (st ? failure : st.error()).detail.c_str());
    return 1;
  }
  const auto broker = brokers::open_broker(config);
  std::int64_t dead = -1;
  if (auto depth = broker->dead_letter_depth(); depth) dead = depth.value();
  for (const char* s : {"running", "compensating", "stuck", "confirmed", "failed", "parked"})
    counts.try_emplace(s, 0);
  // Parked starts: the total and the 10 stores with the most.
  std::int64_t parked_total = 0;
  std::vector<std::pair<std::string, std::int64_t>> top(parked.begin(), parked.end());
  for (const auto& [store, n] : top) parked_total += n;
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (top.size() > 10) top.resize(10);
  if (json) {
    std::string out = "{\"sagas\":";
    append_json_counts(out, counts);
    out += fmt::format(",\"dead_letter_depth\":{},\"rate_limited\":{},\"parked_total\":{},", dead,
                       rate_limited, parked_total);
    out += "\"parked_by_store\":{";
    for (std::size_t i = 0; i < top.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, top[i].first);
      out += fmt::format(":{}", top[i].second);
    }
    out += "}}\n";
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  std::printf("sagas by state:\n");
  for (const auto& [k, v] : counts)
    std::printf("  %-22s %lld\n", k.c_str(), static_cast<long long>(v));
  if (dead >= 0) {
    std::printf("dead-letter queue depth:  %lld\n", static_cast<long long>(dead));
  } else {
    std::printf("dead-letter queue depth:  unknown (%s unreachable)\n",
                std::string(broker->name()).c_str());
  }
  std::printf("rate-limited starts:      %lld\n", static_cast<long long>(rate_limited));
  std::printf("parked starts:            %lld\n", static_cast<long long>(parked_total));
  for (const auto& [store, n] : top)
    std::printf("  %-22s %lld\n", store.c_str(), static_cast<long long>(n));
  return 0;
}

int run_saga_show(const Config& config, const std::string& order_id) {
  RedisSession redis(config);
  store::SagaStore sagas(redis.client(), store_options(config));
  Result<store::SagaRecord> record = make_error(Errc::timeout, "no answer");
  auto st = redis.run([&](std::function<void()> finish) {
    sagas.load(OrderId(order_id), [&, finish](Result<store::SagaRecord> r) {
      record = std::move(r);
      finish();
    });
  });
  if (!st || !record) {
    std::fprintf(stderr, "sagaflow saga show: cannot read Redis at %s:%d: %s\n",
                 config.redis.host.c_str(), config.redis.port,
                 (st ? record.error() : st.error()).detail.c_str());
    return 1;
  }
  if (record->version == 0) {
    std::fprintf(stderr, "sagaflow saga show: no saga for order '%s'\n", order_id.c_str());
    return 1;
  }
  auto state = SagaState::from_record(record->state, record->order);
  if (!state) {
    std::fprintf(stderr, "sagaflow saga show: saga record of '%s' unreadable: %s\n",
                 order_id.c_str(), state.error().detail.c_str());
    return 1;
  }
  // The full object (steps done, pending compensations), with the record's version.
  std::string out = state->to_json();
  out.pop_back();
  out += fmt::format(",\"version\":{}}}", record->version);
  out += '\n';
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace sagaflow::app
