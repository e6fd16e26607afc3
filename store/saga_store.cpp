#include "store/saga_store.hpp"

#include <uv.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <memory>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "store/impl/scripts.hpp"
#include "store/impl/sum_hashes.hpp"

namespace sagaflow::store {
namespace {

Error script_error(std::string_view what, const Reply& r) {
  return make_error(Errc::internal, fmt::format("{}: unexpected reply: {}", what, r.str));
}

// Per event, one string: "applied <v> <stream ids...>" | "duplicate|conflict|limited <v>".
Result<ApplyOutcome> parse_apply(Result<Reply> r, int partition) {
  if (!r.ok()) return std::move(r).error();
  const Reply& reply = r.value();
  if (reply.is_error()) return make_error(Errc::internal, fmt::format("apply.lua: {}", reply.str));
  if (!reply.is_string()) return script_error("apply.lua", reply);
  std::string_view rest = reply.str;
  auto next_word = [&rest] {
    const std::size_t space = rest.find(' ');
    const std::string_view word = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    return word;
  };
  ApplyOutcome out;
  out.partition = partition;
  const std::string_view kind = next_word();
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
  const std::string_view version = next_word();
  const auto [end, ec] =
      std::from_chars(version.data(), version.data() + version.size(), out.version);
  if (version.empty() || ec != std::errc() || end != version.data() + version.size()) {
    return script_error("apply.lua", reply);
  }
  while (!rest.empty()) {
    const std::string_view id = next_word();
    if (id.empty()) return script_error("apply.lua", reply);
    out.stream_ids.emplace_back(id);
  }
  return out;
}

}  // namespace

SagaStore::SagaStore(RedisClient& redis, SagaStoreOptions options)
    : redis_(redis),
      options_(std::move(options)),
      keyspace_(options_.partitions),
      lanes_(static_cast<std::size_t>(keyspace_.partitions())),
      partition_keys_(static_cast<std::size_t>(keyspace_.partitions())),
      flush_timer_(new uv_timer_t{}) {
  if (options_.finished_ttl_s < options_.dedup_ttl_s)
    options_.finished_ttl_s = options_.dedup_ttl_s;
  if (options_.finished_ttl_s <= 0) options_.finished_ttl_s = 86400;
  apply_script_ = redis_.register_script("apply.lua", std::string(impl::kApplyScript));
  for (int p = 0; p < keyspace_.partitions(); ++p) {
    ScriptArgs keys;
    keys.key(Keyspace::outbox_key(p));
    keys.key(Keyspace::deadlines_key(p));
    keys.key(Keyspace::stats_key(p));
    partition_keys_[static_cast<std::size_t>(p)].outbox_deadlines_stats = keys.key_bytes();
    ScriptArgs parked;
    parked.key(Keyspace::parked_stores_key(p));
    parked.key(Keyspace::parked_leases_key(p));
    partition_keys_[static_cast<std::size_t>(p)].parked_stores_leases = parked.key_bytes();
    partition_keys_[static_cast<std::size_t>(p)].head = Keyspace::partition_head(p);
  }
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
  // Written straight into the lane's open batch (one per partition on a cluster: one slot
  // each): its keys as they come, its arguments through scratch_ (their count goes first).
  Lane& lane = lanes_[static_cast<std::size_t>(redis_.cluster() ? p : 0)];
  Batch& batch = open_batch(lane);
  Queued q;
  q.partition = p;
  ScriptArgs& keys = batch.call;
  const std::size_t keys_before = keys.keys();
  ScriptArgs& call = scratch_;
  call.clear();
  // The keys are written from their parts (Keyspace), not built as strings: no allocation.
  const PartitionKeys& shared = partition_keys_[static_cast<std::size_t>(p)];
  const std::string_view head = shared.head;
  keys.key({head, Keyspace::kSagaName, req.order_id.view()});
  keys.key({head, Keyspace::kDedupName, req.event_id.view()});
  keys.raw_keys(shared.outbox_deadlines_stats, 3);
  keys.key({head, Keyspace::kParkedName, req.store_id.view()});
  keys.raw_keys(shared.parked_stores_leases, 2);
  keys.key(
      {head, Keyspace::kStatusIndexName, req.old_status.empty() ? req.new_status : req.old_status});
  keys.key({head, Keyspace::kStatusIndexName, req.new_status});
  keys.key({head, Keyspace::kReasonIndexName, req.reason});
  keys.key({head, Keyspace::kLiveReasonIndexName, req.reason});
  if (gcra) keys.key({Keyspace::kRateHead, req.store_id.view(), Keyspace::kRateTail});

  call.arg(start ? "start" : "apply");
  call.arg(start || req.expected_version < 0 ? 0 : req.expected_version);
  call.arg(dedup ? options_.dedup_ttl_s : 0);
  call.arg(req.order_id.view());
  call.arg(req.new_state);
  call.arg(req.new_status);
  call.arg(req.finished ? "1" : "0");
  call.arg(options_.finished_ttl_s);
  call.arg(req.deadline && *req.deadline > 0 ? *req.deadline : 0);
  call.arg(static_cast<std::int64_t>(req.commands.size()));
  for (const auto& c : req.commands) {
    call.arg(c.id);
    call.arg(c.exchange);
    call.arg(c.route);
    call.arg(c.body);
  }
  call.arg(req.store_id.view());
  call.arg(req.parked_at);
  call.arg(req.updated_at > 0 ? req.updated_at : SystemClock().now_ms());
  call.arg(req.reason);
  call.arg(options_.index_cap);
  call.arg(req.order);
  call.arg(req.fresh_deadline ? "1" : "0");
  if (start) {
    switch (start->admit) {
      case SagaStart::Admit::given:
        call.arg("given");
        break;
      case SagaStart::Admit::park:
        call.arg("park");
        break;
      case SagaStart::Admit::gcra:
        call.arg("gcra");
        break;
    }
    call.arg(req.event_id.view());
    if (gcra) {
      call.arg(start->plan.emission_us);
      call.arg(start->plan.tolerance_us);
    }
  }
  if (options_.wait_replicas > 0) {
    if (start) {
      q.rewrite = {Keyspace::saga_key(p, req.order_id), req.event_id.str()};
      q.rewrite_by_script = true;
    } else if (dedup) {
      q.rewrite = {"SET", Keyspace::dedup_key(p, req.event_id), "1", "KEEPTTL", "XX"};
    }
  }
  q.done = std::move(done);
  // apply.lua's layout: per event its key and argument counts, then its arguments.
  batch.call.arg(static_cast<std::int64_t>(keys.keys() - keys_before));
  batch.call.arg(static_cast<std::int64_t>(call.args()));
  batch.call.raw_args(call.arg_bytes(), call.args());
  batch.items.push_back(std::move(q));
  arm_flush();
}

// The lane's last batch while it has room, else a new one on reused buffers.
SagaStore::Batch& SagaStore::open_batch(Lane& lane) {
  const std::size_t cap = std::max<std::size_t>(1, options_.max_batch);
  if (lane.open.empty() || lane.open.back().items.size() >= cap) {
    Batch& b = lane.open.emplace_back();
    if (!lane.spare.empty()) {
      b.call = std::move(lane.spare.back());
      lane.spare.pop_back();
    }
    b.call.arg("batch");
  }
  return lane.open.back();
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
  const int max_calls = std::max(1, options_.max_calls_in_flight);
  for (auto& lane : lanes_) {
    while (!lane.open.empty() && lane.calls < max_calls) {
      Batch batch = std::move(lane.open.front());
      lane.open.pop_front();
      send(lane, std::move(batch));
    }
  }
}

// One script call for the batch.
void SagaStore::send(Lane& lane, Batch batch) {
  ++lane.calls;
  ++stats_.calls;
  stats_.applies += batch.items.size();
  const ScriptArgs& call = batch.call;
  auto shared = std::make_shared<std::vector<Queued>>(std::move(batch.items));
  auto answered = [this, alive = std::weak_ptr<bool>(alive_), shared, &lane](Result<Reply> r) {
    if (alive.expired()) return;  // the store is gone (its client failed what was in flight)
    // What queued meanwhile goes at the next loop turn, with what these answers start.
    --lane.calls;
    if (!lane.open.empty()) arm_flush();
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
    redis_.eval(apply_script_, call, std::move(answered), options_.timeout_ms);
  } else {
    redis_.eval_replicated(apply_script_, call,
                           WaitReplicas{options_.wait_replicas, options_.wait_timeout_ms},
                           std::move(answered), options_.timeout_ms);
  }
  // The call is encoded (the client keeps its own copy): its buffers serve a later batch.
  if (lane.spare.size() < kSpareBuffers &&
      call.key_bytes().capacity() + call.arg_bytes().capacity() <= kMaxSpareBytes) {
    batch.call.clear();
    lane.spare.push_back(std::move(batch.call));
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
