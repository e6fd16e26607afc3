#include "store/saga_store.hpp"

#include <memory>
#include <utility>

#include <fmt/format.h>

#include "store/impl/scripts.hpp"
#include "store/impl/sum_hashes.hpp"

namespace sagaflow::store {
namespace {

Error script_error(std::string_view what, const Reply& r) {
  return make_error(Errc::internal, fmt::format("{}: unexpected reply: {}", what, r.str));
}

// {"applied", v, ids...} | {"duplicate"|"conflict", v}
Result<ApplyOutcome> parse_apply(Result<Reply> r, int partition) {
  if (!r.ok()) return std::move(r).error();
  const Reply& reply = r.value();
  if (reply.is_error()) return make_error(Errc::internal, fmt::format("apply.lua: {}", reply.str));
  if (!reply.is_array() || reply.elements.size() < 2) return script_error("apply.lua", reply);
  ApplyOutcome out;
  out.partition = partition;
  const std::string& kind = reply.elements[0].str;
  if (kind == "applied") {
    out.kind = ApplyKind::applied;
  } else if (kind == "duplicate") {
    out.kind = ApplyKind::duplicate;
  } else if (kind == "conflict") {
    out.kind = ApplyKind::conflict;
  } else {
    return script_error("apply.lua", reply);
  }
  if (!reply.elements[1].as_int(out.version)) return script_error("apply.lua", reply);
  for (std::size_t i = 2; i < reply.elements.size(); ++i) {
    out.stream_ids.push_back(reply.elements[i].str);
  }
  return out;
}

}  // namespace

SagaStore::SagaStore(RedisClient& redis, SagaStoreOptions options)
    : redis_(redis), options_(std::move(options)), keyspace_(options_.partitions) {
  if (options_.finished_ttl_s < options_.dedup_ttl_s)
    options_.finished_ttl_s = options_.dedup_ttl_s;
  if (options_.finished_ttl_s <= 0) options_.finished_ttl_s = 86400;
  if (options_.consumer.empty()) options_.consumer = "sagaflow";
  apply_script_ = redis_.register_script("apply.lua", std::string(impl::kApplyScript));
}

void SagaStore::load(const OrderId& order, LoadCallback done) {
  const int p = keyspace_.partition_of(order);
  redis_.command(
      {"HMGET", Keyspace::saga_key(p, order), "version", "state", "status"},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        const Reply& reply = r.value();
        if (reply.is_error()) return done(make_error(Errc::internal, "HMGET: " + reply.str));
        if (!reply.is_array() || reply.elements.size() != 3) {
          return done(script_error("HMGET", reply));
        }
        SagaRecord rec;
        if (!reply.elements[0].is_nil() && !reply.elements[0].as_int(rec.version)) {
          return done(make_error(Errc::internal, "saga record with a bad version"));
        }
        rec.state = std::move(r.value().elements[1].str);
        rec.status = std::move(r.value().elements[2].str);
        done(std::move(rec));
      },
      options_.timeout_ms);
}

void SagaStore::apply(const ApplyRequest& req, ApplyCallback done) {
  const int p = keyspace_.partition_of(req.order_id);
  const bool dedup = !req.event_id.empty() && options_.dedup_ttl_s > 0;
  std::vector<std::string> keys{
      Keyspace::saga_key(p, req.order_id),
      Keyspace::dedup_key(p, req.event_id),
      Keyspace::outbox_key(p),
      Keyspace::deadlines_key(p),
      Keyspace::stats_key(p),
      Keyspace::parked_key(p, req.store_id),
      Keyspace::parked_stores_key(p),
      Keyspace::parked_leases_key(p),
      Keyspace::status_index_key(p, req.old_status.empty() ? req.new_status : req.old_status),
      Keyspace::status_index_key(p, req.new_status),
      Keyspace::reason_index_key(p, req.reason),
      Keyspace::live_reason_index_key(p, req.reason)};
  std::vector<std::string> args;
  args.reserve(12 + 4 * req.commands.size());
  args.emplace_back("apply");
  args.push_back(std::to_string(req.expected_version < 0 ? 0 : req.expected_version));
  args.push_back(std::to_string(dedup ? options_.dedup_ttl_s : 0));
  args.push_back(req.order_id.str());
  args.push_back(req.new_state);
  args.push_back(req.new_status);
  args.emplace_back(req.finished ? "1" : "0");
  args.push_back(std::to_string(options_.finished_ttl_s));
  args.push_back(std::to_string(req.deadline && *req.deadline > 0 ? *req.deadline : 0));
  args.emplace_back(kOutboxGroup);
  args.push_back(options_.consumer);
  args.push_back(std::to_string(req.commands.size()));
  for (const auto& c : req.commands) {
    args.push_back(c.id);
    args.push_back(c.exchange);
    args.push_back(c.route);
    args.push_back(c.body);
  }
  args.push_back(req.store_id.str());
  args.push_back(std::to_string(req.parked_at));
  args.push_back(std::to_string(req.updated_at > 0 ? req.updated_at : SystemClock().now_ms()));
  args.push_back(req.reason);
  args.push_back(std::to_string(options_.index_cap));
  if (options_.wait_replicas <= 0) {
    redis_.eval(
        apply_script_, std::move(keys), std::move(args),
        [p, done = std::move(done)](Result<Reply> r) { done(parse_apply(std::move(r), p)); },
        options_.timeout_ms);
    return;
  }
  const WaitReplicas wait{options_.wait_replicas, options_.wait_timeout_ms};
  std::string dedup_key = dedup ? keys[1] : std::string();
  redis_.eval_replicated(
      apply_script_, std::move(keys), std::move(args), wait,
      [this, p, wait, dedup_key = std::move(dedup_key),
       done = std::move(done)](Result<Reply> r) mutable {
        auto outcome = parse_apply(std::move(r), p);
        if (!outcome || outcome->kind != ApplyKind::duplicate || dedup_key.empty()) {
          done(std::move(outcome));
          return;
        }
        // The first apply may have been another connection's, so this connection's WAIT does
        // not cover it: rewrite its dedup mark (same value, same TTL) and WAIT for that. A
        // replica acknowledges the replication stream in order, so it has the first apply too.
        redis_.command_replicated(
            {"SET", dedup_key, "1", "KEEPTTL", "XX"}, wait,
            [outcome = std::move(outcome.value()),
             done = std::move(done)](Result<Reply> marked) mutable {
              if (!marked.ok()) return done(std::move(marked).error());
              if (marked->is_error()) {
                return done(
                    make_error(Errc::internal, fmt::format("dedup mark rewrite: {}", marked->str)));
              }
              done(std::move(outcome));
            },
            options_.timeout_ms);
      },
      options_.timeout_ms);
}

void SagaStore::status_counts(StatsCallback done) {
  std::vector<std::string> keys;
  for (int p = 0; p < keyspace_.partitions(); ++p) keys.push_back(Keyspace::stats_key(p));
  impl::sum_hashes(redis_, std::move(keys), options_.timeout_ms, std::move(done));
}

}  // namespace sagaflow::store
