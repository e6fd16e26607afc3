#include "store/deliveries.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "store/impl/scripts.hpp"
#include "store/keyspace.hpp"

namespace sagaflow::store {
namespace {

Error script_failed(std::string_view name, const Reply& reply) {
  return make_error(Errc::internal,
                    fmt::format("{}: {}", name, reply.is_error() ? reply.str : "unexpected reply"));
}

// A map of a flat HGETALL reply.
std::map<std::string, std::string> fields_of(Reply& reply) {
  std::map<std::string, std::string> out;
  if (!reply.is_array()) return out;
  for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2)
    out.emplace(std::move(reply.elements[i].str), std::move(reply.elements[i + 1].str));
  return out;
}

// Counts down the replies of a fan-out; the first error wins.
template <class T>
struct FanOut {
  T value{};
  int left = 0;
  std::optional<Error> error;
  std::function<void(Result<T>)> done;
  void fail(Error e) {
    if (!error) error = std::move(e);
  }
  void finish_one() {
    if (--left > 0) return;
    if (error) return done(std::move(*error));
    done(std::move(value));
  }
};

}  // namespace

Deliveries::Deliveries(RedisClient& redis, DeliveriesOptions options)
    : redis_(redis), options_(std::move(options)) {
  if (options_.partitions < 1) options_.partitions = 1;
  if (options_.log_max < 1) options_.log_max = 1;
  record_ =
      redis_.register_script("record_deliveries.lua", std::string(impl::kRecordDeliveriesScript));
  claim_ =
      redis_.register_script("claim_deliveries.lua", std::string(impl::kClaimDeliveriesScript));
  update_ = redis_.register_script("update_delivery.lua", std::string(impl::kUpdateDeliveryScript));
  cas_ = redis_.register_script("cas.lua", std::string(impl::kCasScript));
}

int Deliveries::partition_of(std::string_view event_id) const noexcept {
  return static_cast<int>(fnv1a64(event_id) % static_cast<std::uint64_t>(options_.partitions));
}

std::string Deliveries::event_key(int p, std::string_view event_id) {
  return fmt::format("sagaflow:{{{}}}:dlv:{}", p, event_id);
}
std::string Deliveries::seen_key(int p, std::string_view event_id) {
  return fmt::format("sagaflow:{{{}}}:dlv_seen:{}", p, event_id);
}
std::string Deliveries::due_key(int p) {
  return fmt::format("sagaflow:{{{}}}:dlv_due", p);
}
std::string Deliveries::log_key(int p) {
  return fmt::format("sagaflow:{{{}}}:dlv_log", p);
}
std::string Deliveries::breaker_key(std::string_view endpoint_id) {
  return fmt::format("sagaflow:ep:{{{}}}:breaker", endpoint_id);
}

void Deliveries::record(const std::string& event_id, const std::string& type,
                        const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& records,
                        std::function<void(Result<bool>)> done) {
  const int p = partition_of(event_id);
  const std::int64_t per_partition =
      std::max<std::int64_t>(1, (options_.log_max + options_.partitions - 1) / options_.partitions);
  std::vector<std::string> args{
      event_id, std::to_string(options_.ttl_s), std::to_string(per_partition), body,
      type,     std::to_string(records.size())};
  for (const auto& [ep, rec] : records) {
    args.push_back(ep);
    args.push_back(rec);
  }
  redis_.eval(
      record_, {event_key(p, event_id), due_key(p), log_key(p), seen_key(p, event_id)},
      std::move(args),
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        std::int64_t n = 0;
        if (r->is_error() || !r->as_int(n)) return done(script_failed("record_deliveries.lua", *r));
        done(n == 1);
      },
      options_.timeout_ms);
}

void Deliveries::claim_due(int partition, int limit, Millis lease_ms,
                           std::function<void(Result<std::vector<DueDelivery>>)> done) {
  redis_.eval(
      claim_, {due_key(partition), event_key(partition, "")},
      {std::to_string(std::max(1, limit)), std::to_string(std::max<Millis>(1, lease_ms))},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        Reply& reply = r.value();
        if (!reply.is_array() || reply.elements.empty() || (reply.elements.size() - 1) % 4 != 0)
          return done(script_failed("claim_deliveries.lua", reply));
        std::vector<DueDelivery> out;
        for (std::size_t i = 1; i + 3 < reply.elements.size(); i += 4) {
          out.push_back(DueDelivery{
              std::move(reply.elements[i].str), std::move(reply.elements[i + 1].str),
              std::move(reply.elements[i + 2].str), std::move(reply.elements[i + 3].str)});
        }
        done(std::move(out));
      },
      options_.timeout_ms);
}

void Deliveries::update(const std::string& event_id, const std::string& endpoint_id,
                        const std::string& record, Millis due_ms, const std::string& expected,
                        std::function<void(Result<bool>)> done) {
  const int p = partition_of(event_id);
  redis_.eval(
      update_, {event_key(p, event_id), due_key(p)},
      {endpoint_id, event_id, record, std::to_string(std::max<Millis>(0, due_ms)), expected,
       std::to_string(options_.ttl_s)},
      [done = std::move(done)](Result<Reply> r) {
        if (!done) return;
        if (!r.ok()) return done(std::move(r).error());
        std::int64_t n = 0;
        if (r->is_error() || !r->as_int(n)) return done(script_failed("update_delivery.lua", *r));
        done(n == 1);
      },
      options_.timeout_ms);
}

void Deliveries::postpone(const std::string& event_id, const std::string& endpoint_id,
                          Millis due_ms, Millis now_ms) {
  const int p = partition_of(event_id);
  redis_.command(
      {"ZADD", due_key(p), "XX", std::to_string(due_ms), endpoint_id + ":" + event_id},
      [](Result<Reply>) {}, options_.timeout_ms);
  const Millis ttl = options_.ttl_s + std::max<Millis>(0, (due_ms - now_ms + 999) / 1000);
  redis_.command(
      {"EXPIRE", event_key(p, event_id), std::to_string(ttl), "GT"}, [](Result<Reply>) {},
      options_.timeout_ms);
}

void Deliveries::has_endpoint(const std::string& id, std::function<void(Result<bool>)> done) {
  redis_.command(
      {"HEXISTS", std::string(kEndpointsKey), id},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        std::int64_t n = 0;
        if (r->is_error() || !r->as_int(n)) return done(script_failed("HEXISTS", *r));
        done(n == 1);
      },
      options_.timeout_ms);
}

void Deliveries::get(const std::string& event_id,
                     std::function<void(Result<std::map<std::string, std::string>>)> done) {
  redis_.command(
      {"HGETALL", event_key(partition_of(event_id), event_id)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(script_failed("HGETALL", *r));
        done(fields_of(r.value()));
      },
      options_.timeout_ms);
}

void Deliveries::recent(int limit, std::function<void(Result<std::vector<Logged>>)> done) {
  struct Entry {
    double created = 0;
    std::string event;
  };
  auto ids = std::make_shared<FanOut<std::vector<Entry>>>();
  ids->left = options_.partitions;
  ids->done = [this, limit, done = std::move(done)](Result<std::vector<Entry>> r) mutable {
    if (!r) return done(std::move(r).error());
    auto& all = r.value();
    std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) {
      return a.created != b.created ? a.created > b.created : a.event < b.event;
    });
    if (all.size() > static_cast<std::size_t>(limit)) all.resize(static_cast<std::size_t>(limit));
    if (all.empty()) return done(std::vector<Logged>{});
    auto rows = std::make_shared<FanOut<std::vector<Logged>>>();
    rows->left = static_cast<int>(all.size());
    rows->value.resize(all.size());
    rows->done = std::move(done);
    for (std::size_t i = 0; i < all.size(); ++i) {
      rows->value[i].first = all[i].event;
      get(all[i].event, [rows, i](Result<std::map<std::string, std::string>> f) {
        if (!f) {
          rows->fail(f.error());
        } else {
          rows->value[i].second = std::move(f.value());
        }
        rows->finish_one();
      });
    }
  };
  for (int p = 0; p < options_.partitions; ++p) {
    redis_.command(
        {"ZREVRANGE", log_key(p), "0", std::to_string(std::max(1, limit) - 1), "WITHSCORES"},
        [ids](Result<Reply> r) {
          if (!r.ok()) {
            ids->fail(r.error());
          } else if (r->is_array()) {
            auto& e = r->elements;
            for (std::size_t i = 0; i + 1 < e.size(); i += 2)
              ids->value.push_back(Entry{std::atof(e[i + 1].str.c_str()), std::move(e[i].str)});
          }
          ids->finish_one();
        },
        options_.timeout_ms);
  }
}

void Deliveries::waiting(std::function<void(Result<std::int64_t>)> done) {
  auto sum = std::make_shared<FanOut<std::int64_t>>();
  sum->left = options_.partitions;
  sum->done = std::move(done);
  for (int p = 0; p < options_.partitions; ++p) {
    redis_.command(
        {"ZCARD", due_key(p)},
        [sum](Result<Reply> r) {
          std::int64_t n = 0;
          if (!r.ok()) {
            sum->fail(r.error());
          } else if (r->as_int(n)) {
            sum->value += n;
          }
          sum->finish_one();
        },
        options_.timeout_ms);
  }
}

void Deliveries::endpoints(std::function<void(Result<std::map<std::string, std::string>>)> done) {
  redis_.command(
      {"HGETALL", std::string(kEndpointsKey)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(script_failed("HGETALL", *r));
        done(fields_of(r.value()));
      },
      options_.timeout_ms);
}

void Deliveries::put_endpoint(const std::string& id, const std::string& json,
                              std::function<void(Status)> done) {
  redis_.command(
      {"HSET", std::string(kEndpointsKey), id, json},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(script_failed("HSET", *r));
        done(Status::success());
      },
      options_.timeout_ms);
}

void Deliveries::remove_endpoint(const std::string& id, std::function<void(Result<bool>)> done) {
  redis_.command(
      {"DEL", breaker_key(id)}, [](Result<Reply>) {}, options_.timeout_ms);
  redis_.command(
      {"HDEL", std::string(kEndpointsKey), id},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        std::int64_t n = 0;
        if (r->is_error() || !r->as_int(n)) return done(script_failed("HDEL", *r));
        done(n == 1);
      },
      options_.timeout_ms);
}

void Deliveries::breaker(const std::string& endpoint_id,
                         std::function<void(Result<std::string>)> done) {
  redis_.command(
      {"GET", breaker_key(endpoint_id)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        if (r->is_error()) return done(script_failed("GET", *r));
        done(r->is_nil() ? std::string() : std::move(r.value().str));
      },
      options_.timeout_ms);
}

void Deliveries::set_breaker(const std::string& endpoint_id, const std::string& expected,
                             const std::string& next, std::function<void(Result<bool>)> done) {
  redis_.eval(
      cas_, {breaker_key(endpoint_id)}, {expected, next, "0"},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        std::int64_t ok = 0;
        if (!r->is_array() || r->elements.empty() || !r->elements[0].as_int(ok))
          return done(script_failed("cas.lua", *r));
        done(ok == 1);
      },
      options_.timeout_ms);
}

void Deliveries::breakers(const std::vector<std::string>& endpoint_ids,
                          std::function<void(Result<std::vector<std::string>>)> done) {
  if (endpoint_ids.empty()) return done(std::vector<std::string>{});
  auto all = std::make_shared<FanOut<std::vector<std::string>>>();
  all->left = static_cast<int>(endpoint_ids.size());
  all->value.resize(endpoint_ids.size());
  all->done = std::move(done);
  for (std::size_t i = 0; i < endpoint_ids.size(); ++i) {
    breaker(endpoint_ids[i], [all, i](Result<std::string> r) {
      if (!r) {
        all->fail(r.error());
      } else {
        all->value[i] = std::move(r.value());
      }
      all->finish_one();
    });
  }
}

}  // namespace sagaflow::store
