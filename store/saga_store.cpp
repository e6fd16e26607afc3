#include "store/saga_store.hpp"

#include <uv.h>

#include <algorithm>
#include <iterator>

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

// {"applied", v, ids...} | {"duplicate"|"conflict"|"limited", v}
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
  } else if (kind == "limited") {
    out.kind = ApplyKind::limited;
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
    : redis_(redis),
      options_(std::move(options)),
      keyspace_(options_.partitions),
      lanes_(static_cast<std::size_t>(keyspace_.partitions())),
      flush_timer_(new uv_timer_t{}) {
  if (options_.finished_ttl_s < options_.dedup_ttl_s)
    options_.finished_ttl_s = options_.dedup_ttl_s;
  if (options_.finished_ttl_s <= 0) options_.finished_ttl_s = 86400;
  apply_script_ = redis_.register_script("apply.lua", std::string(impl::kApplyScript));
  uv_timer_init(redis_.loop(), flush_timer_);
  flush_timer_->data = this;
}

SagaStore::~SagaStore() {
  uv_timer_stop(flush_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(flush_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void SagaStore::load(const OrderId& order, LoadCallback done) {
  const int p = keyspace_.partition_of(order);
  redis_.command(
      {"HMGET", Keyspace::saga_key(p, order), "version", "state", "status", "order"},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        const Reply& reply = r.value();
        if (reply.is_error()) return done(make_error(Errc::internal, "HMGET: " + reply.str));
        if (!reply.is_array() || reply.elements.size() != 4) {
          return done(script_error("HMGET", reply));
        }
        SagaRecord rec;
        if (!reply.elements[0].is_nil() && !reply.elements[0].as_int(rec.version)) {
          return done(make_error(Errc::internal, "saga record with a bad version"));
        }
        rec.state = std::move(r.value().elements[1].str);
        rec.status = std::move(r.value().elements[2].str);
        rec.order = std::move(r.value().elements[3].str);
        done(std::move(rec));
      },
      options_.timeout_ms);
}

void SagaStore::apply(const ApplyRequest& req, ApplyCallback done) {
  const int p = keyspace_.partition_of(req.order_id);
  const bool dedup = !req.event_id.empty() && options_.dedup_ttl_s > 0;
  const SagaStart* start = req.start ? &*req.start : nullptr;
  const bool gcra = start != nullptr && start->admit == SagaStart::Admit::gcra;
  if (gcra && redis_.cluster()) {
    // The store's bucket is in another slot: a cluster admits in a call of its own.
    return done(make_error(Errc::internal, "apply: a start admitted in the script on a cluster"));
  }
  Queued q;
  q.partition = p;
  q.keys.reserve(gcra ? 13 : 12);
  q.keys.push_back(Keyspace::saga_key(p, req.order_id));
  q.keys.push_back(Keyspace::dedup_key(p, req.event_id));
  q.keys.push_back(Keyspace::outbox_key(p));
  q.keys.push_back(Keyspace::deadlines_key(p));
  q.keys.push_back(Keyspace::stats_key(p));
  q.keys.push_back(Keyspace::parked_key(p, req.store_id));
  q.keys.push_back(Keyspace::parked_stores_key(p));
  q.keys.push_back(Keyspace::parked_leases_key(p));
  q.keys.push_back(
      Keyspace::status_index_key(p, req.old_status.empty() ? req.new_status : req.old_status));
  q.keys.push_back(Keyspace::status_index_key(p, req.new_status));
  q.keys.push_back(Keyspace::reason_index_key(p, req.reason));
  q.keys.push_back(Keyspace::live_reason_index_key(p, req.reason));
  if (gcra) q.keys.push_back(Keyspace::rate_key(req.store_id));
  auto& args = q.args;
  args.reserve(20 + 4 * req.commands.size());
  args.emplace_back(start ? "start" : "apply");
  args.push_back(std::to_string(start || req.expected_version < 0 ? 0 : req.expected_version));
  args.push_back(std::to_string(dedup ? options_.dedup_ttl_s : 0));
  args.push_back(req.order_id.str());
  args.push_back(req.new_state);
  args.push_back(req.new_status);
  args.emplace_back(req.finished ? "1" : "0");
  args.push_back(std::to_string(options_.finished_ttl_s));
  args.push_back(std::to_string(req.deadline && *req.deadline > 0 ? *req.deadline : 0));
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
  args.push_back(req.order);
  args.emplace_back(req.fresh_deadline ? "1" : "0");
  if (start) {
    switch (start->admit) {
      case SagaStart::Admit::given:
        args.emplace_back("given");
        break;
      case SagaStart::Admit::park:
        args.emplace_back("park");
        break;
      case SagaStart::Admit::gcra:
        args.emplace_back("gcra");
        break;
    }
    args.push_back(req.event_id.str());
    if (gcra) {
      args.push_back(std::to_string(start->plan.emission_us));
      args.push_back(std::to_string(start->plan.tolerance_us));
    }
  }
  if (options_.wait_replicas > 0) {
    if (start) {
      q.rewrite = {q.keys[0], req.event_id.str()};
      q.rewrite_by_script = true;
    } else if (dedup) {
      q.rewrite = {"SET", q.keys[1], "1", "KEEPTTL", "XX"};
    }
  }
  q.done = std::move(done);
  // The applies of one loop turn go out together (per partition on a cluster: one slot each).
  lanes_[static_cast<std::size_t>(redis_.cluster() ? p : 0)].queued.push_back(std::move(q));
  arm_flush();
}

void SagaStore::arm_flush() {
  if (flush_armed_) return;
  flush_armed_ = true;
  uv_timer_start(flush_timer_, &SagaStore::on_flush, 0, 0);
}

void SagaStore::on_flush(uv_timer_t* timer) {
  static_cast<SagaStore*>(timer->data)->flush();
}

void SagaStore::flush() {
  flush_armed_ = false;
  const std::size_t cap = std::max<std::size_t>(1, options_.max_batch);
  const int max_calls = std::max(1, options_.max_calls_in_flight);
  for (auto& lane : lanes_) {
    std::size_t from = 0;
    while (from < lane.queued.size() && lane.calls < max_calls) {
      const std::size_t to = std::min(lane.queued.size(), from + cap);
      std::vector<Queued> batch(
          std::make_move_iterator(lane.queued.begin() + static_cast<std::ptrdiff_t>(from)),
          std::make_move_iterator(lane.queued.begin() + static_cast<std::ptrdiff_t>(to)));
      from = to;
      send(lane, std::move(batch));
    }
    lane.queued.erase(lane.queued.begin(), lane.queued.begin() + static_cast<std::ptrdiff_t>(from));
  }
}

// One script call for the batch (apply.lua's layout: per event its key and argument counts).
void SagaStore::send(Lane& lane, std::vector<Queued> batch) {
  ++lane.calls;
  ++stats_.calls;
  stats_.applies += batch.size();
  std::vector<std::string> keys;
  std::vector<std::string> args;
  std::size_t n_keys = 0;
  std::size_t n_args = 2;
  for (const auto& q : batch) {
    n_keys += q.keys.size();
    n_args += 2 + q.args.size();
  }
  keys.reserve(n_keys);
  args.reserve(n_args);
  args.emplace_back("batch");
  args.push_back(std::to_string(batch.size()));
  for (auto& q : batch) {
    for (auto& k : q.keys) keys.push_back(std::move(k));
    args.push_back(std::to_string(q.keys.size()));
    args.push_back(std::to_string(q.args.size()));
    for (auto& v : q.args) args.push_back(std::move(v));
  }
  auto shared = std::make_shared<std::vector<Queued>>(std::move(batch));
  auto answered = [this, alive = std::weak_ptr<bool>(alive_), shared, &lane](Result<Reply> r) {
    if (alive.expired()) return;  // the store is gone (its client failed what was in flight)
    // What queued meanwhile goes at the next loop turn, with what these answers start.
    --lane.calls;
    if (!lane.queued.empty()) arm_flush();
    auto& items = *shared;
    if (r.ok() && !r->is_error() && (!r->is_array() || r->elements.size() != items.size())) {
      r = make_error(Errc::internal, "apply.lua: a batch answer of the wrong size");
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!r.ok()) {
        answer(items[i], r.error());
      } else if (r->is_error()) {
        answer(items[i], Reply(r.value()));
      } else {
        answer(items[i], std::move(r->elements[i]));
      }
    }
  };
  if (options_.wait_replicas <= 0) {
    redis_.eval(apply_script_, std::move(keys), std::move(args), std::move(answered),
                options_.timeout_ms);
  } else {
    redis_.eval_replicated(apply_script_, std::move(keys), std::move(args),
                           WaitReplicas{options_.wait_replicas, options_.wait_timeout_ms},
                           std::move(answered), options_.timeout_ms);
  }
}

void SagaStore::answer(Queued& q, Result<Reply> r) {
  auto outcome = parse_apply(std::move(r), q.partition);
  if (!outcome || outcome->kind != ApplyKind::duplicate || q.rewrite.empty()) {
    auto done = std::move(q.done);
    done(std::move(outcome));
    return;
  }
  // The first apply may have been another connection's, so this connection's WAIT does not
  // cover it: rewrite its dedup mark (same value, same TTL) or a start's created_by (same
  // value, on a record a duplicate found) and WAIT for that. A replica acknowledges the
  // replication stream in order, so it has the first apply too.
  auto rewritten = [outcome = std::move(outcome.value()),
                    done = std::move(q.done)](Result<Reply> marked) mutable {
    if (!marked.ok()) return done(std::move(marked).error());
    if (marked->is_error()) {
      return done(make_error(Errc::internal, fmt::format("dedup mark rewrite: {}", marked->str)));
    }
    done(std::move(outcome));
  };
  const WaitReplicas wait{options_.wait_replicas, options_.wait_timeout_ms};
  if (q.rewrite_by_script) {
    redis_.eval_replicated(apply_script_, {std::move(q.rewrite[0])},
                           {"touch", std::move(q.rewrite[1])}, wait, std::move(rewritten),
                           options_.timeout_ms);
  } else {
    redis_.command_replicated(std::move(q.rewrite), wait, std::move(rewritten),
                              options_.timeout_ms);
  }
}

void SagaStore::status_counts(StatsCallback done) {
  std::vector<std::string> keys;
  for (int p = 0; p < keyspace_.partitions(); ++p) keys.push_back(Keyspace::stats_key(p));
  impl::sum_hashes(redis_, std::move(keys), options_.timeout_ms, std::move(done));
}

}  // namespace sagaflow::store
