#include "store/rate_limiter.hpp"

#include <uv.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "core/log.hpp"
#include "store/impl/scripts.hpp"
#include "store/keyspace.hpp"

namespace sagaflow::store {

RateLimiter::RateLimiter(RedisClient& redis, RateLimiterOptions options)
    : redis_(redis), options_(std::move(options)) {
  if (options_.plans.empty()) options_.plans.push_back(RatePlan{"free", 60, 60000, 100});
  default_index_ = 0;
  for (std::size_t i = 0; i < options_.plans.size(); ++i) {
    if (options_.plans[i].name == options_.default_plan) default_index_ = i;
  }
  if (options_.max_cached_stores < 1) options_.max_cached_stores = 1;
  script_ = redis_.register_script("gcra.lua", std::string(impl::kGcraScript));
}

RateLimiter::~RateLimiter() {
  // Callers still waiting are answered, as the Redis client answers the calls it holds when it
  // stops: admit() callers and plan lookups. Answers of calls still out find this limiter gone
  // (alive_) and only reach their callers.
  alive_.reset();
  std::vector<AdmitCallback> waiting;
  for (auto& [key, t] : turns_) {
    for (auto& w : t.waiting) waiting.push_back(std::move(w));
  }
  turns_.clear();
  due_.clear();
  std::vector<PlanCallback> plan_waiters;
  for (auto& [store, e] : cache_) {
    for (auto& w : e.waiters) plan_waiters.push_back(std::move(w));
  }
  cache_.clear();
  const Error stopped = make_error(Errc::unavailable, "rate limiter stopped");
  for (auto& w : waiting) w(stopped);
  for (auto& w : plan_waiters) w(stopped);
  if (turn_timer_ == nullptr) return;
  uv_timer_stop(turn_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(turn_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

const RatePlan& RateLimiter::plan_named(std::string_view name) const {
  for (const auto& p : options_.plans) {
    if (p.name == name) return p;
  }
  return options_.plans[default_index_];
}

void RateLimiter::admit(const StoreId& store, AdmitCallback done) {
  auto [it, fresh] = turns_.try_emplace(store.str());
  StoreTurn& t = it->second;
  if (fresh) t.store = store;
  t.waiting.push_back(std::move(done));
  if (!t.in_flight) schedule(it->first, t);  // else: they go when the call out answers
}

void RateLimiter::schedule(const std::string& key, StoreTurn& t) {
  if (t.due) return;
  t.due = true;
  due_.push_back(key);
  if (due_.size() != 1) return;  // the turn's end is armed already
  if (turn_timer_ == nullptr) {
    turn_timer_ = new uv_timer_t{};
    uv_timer_init(redis_.loop(), turn_timer_);
    turn_timer_->data = this;
  }
  uv_timer_start(turn_timer_, &RateLimiter::on_turn_end, 0, 0);
}

void RateLimiter::on_turn_end(uv_timer_t* timer) {
  static_cast<RateLimiter*>(timer->data)->admit_turn();
}

void RateLimiter::admit_turn() {
  std::vector<std::string> due;
  due.swap(due_);  // an answer may admit again: that goes into the next turn
  for (const auto& key : due) {
    const auto it = turns_.find(key);
    if (it == turns_.end()) continue;
    StoreTurn& t = it->second;
    t.due = false;
    if (!t.in_flight && !t.waiting.empty()) send(key, t);
  }
}

// One admit_up_to(n) for the store's n waiting callers: the first k are admitted, exactly as k
// single admissions in a row would be, the rest refused.
void RateLimiter::send(const std::string& key, StoreTurn& t) {
  auto waiters = std::make_shared<std::vector<AdmitCallback>>(std::move(t.waiting));
  t.waiting.clear();
  t.in_flight = true;
  const auto n = static_cast<std::int64_t>(waiters->size());
  std::weak_ptr<bool> alive = alive_;
  const StoreId store = t.store;  // an answer on this stack may erase t
  plan_of(store, [this, alive, key, store, n, waiters](Result<GcraParams> g) {
    if (!g || alive.expired()) {
      // The callers behind this call came after these: they fail with them, in order.
      Error e = make_error(Errc::unavailable, "rate limiter stopped");
      if (!g) e = g.error();
      std::vector<AdmitCallback> behind;
      if (!alive.expired()) behind = answered(key, true);
      for (auto& w : *waiters) w(e);
      for (auto& w : behind) w(e);
      return;
    }
    // Refused after others of the call were admitted: the next token is about T away.
    const std::int64_t next_ms = std::max<std::int64_t>(1, (g->emission_us + 999) / 1000);
    run(store, g.value(), n, false, [this, alive, key, waiters, n, next_ms](Result<Admission> a) {
      // Once a caller is refused (or the call failed), the callers that came while it was out
      // are refused too, so that no later start goes ahead of an earlier one; else they go now.
      const bool all_granted = a.ok() && a->granted >= n;
      std::vector<AdmitCallback> behind;
      if (!alive.expired()) behind = answered(key, !all_granted);
      if (!a) {
        for (auto& w : *waiters) w(a.error());
        for (auto& w : behind) w(a.error());
        return;
      }
      const Admission refused{false, 0, a->granted > 0 ? next_ms : a->retry_after_ms};
      for (std::size_t i = 0; i < waiters->size(); ++i) {
        auto& w = (*waiters)[i];
        if (static_cast<std::int64_t>(i) < a->granted) {
          w(Admission{true, 1, 0});
        } else {
          w(refused);
        }
      }
      for (auto& w : behind) w(refused);
    });
  });
}

// The store's call out answered. The callers that came meanwhile are handed back to be refused
// (take_waiting) or go at this turn's end.
std::vector<RateLimiter::AdmitCallback> RateLimiter::answered(const std::string& key,
                                                              bool take_waiting) {
  std::vector<AdmitCallback> taken;
  const auto it = turns_.find(key);
  if (it == turns_.end()) return taken;
  StoreTurn& t = it->second;
  t.in_flight = false;
  if (take_waiting) taken.swap(t.waiting);
  if (!t.waiting.empty()) {
    schedule(it->first, t);
  } else {
    turns_.erase(it);  // not due: a store with a call out is never scheduled
  }
  return taken;
}

void RateLimiter::admit_up_to(const StoreId& store, std::int64_t n, bool peek, AdmitCallback done) {
  if (n < 1) n = 1;
  plan_of(store, [this, store, n, peek, done = std::move(done)](Result<GcraParams> g) mutable {
    if (!g) return done(std::move(g).error());
    run(store, g.value(), n, peek, std::move(done));
  });
}

void RateLimiter::plan_of(const StoreId& store, PlanCallback done) {
  const auto now = std::chrono::steady_clock::now();
  auto it = cache_.find(store.str());
  if (it != cache_.end() && it->second.known) {
    CacheEntry& e = it->second;
    if (!e.fetching && now - e.fetched >= std::chrono::milliseconds(options_.plan_refresh_ms)) {
      fetch_plan(store.str());  // refresh in the background; use the cached plan meanwhile
    }
    return done(gcra_params(plan_named(e.plan)));
  }
  if (it == cache_.end()) {
    evict_if_full();
    it = cache_.emplace(store.str(), CacheEntry{}).first;
  }
  it->second.waiters.push_back(std::move(done));
  if (!it->second.fetching) fetch_plan(store.str());
}

void RateLimiter::admit_with(const StoreId& store, const RatePlan& plan, AdmitCallback done) {
  run(store, gcra_params(plan), 1, false, std::move(done));
}

void RateLimiter::fetch_plan(const std::string& store) {
  cache_[store].fetching = true;
  redis_.command(
      {"HGET", std::string(kStorePlansKey), store},
      [this, alive = std::weak_ptr<bool>(alive_), store](Result<Reply> r) {
        if (alive.expired()) return;  // its waiters were answered by the destructor
        auto it = cache_.find(store);
        if (it == cache_.end()) return;
        CacheEntry& e = it->second;
        e.fetching = false;
        std::vector<PlanCallback> waiters;
        waiters.swap(e.waiters);
        if (!r.ok() || r->is_error()) {
          const Error err =
              r.ok() ? make_error(Errc::internal, "HGET store_plans: " + r->str) : r.error();
          if (!e.known) cache_.erase(it);  // keep a stale plan on a failed refresh
          for (auto& w : waiters) w(err);
          return;
        }
        e.known = true;
        e.plan = r->is_nil() ? std::string() : r->str;
        e.fetched = std::chrono::steady_clock::now();
        if (!e.plan.empty() && plan_named(e.plan).name != e.plan) {
          log::warn("unknown plan for store, using the default plan",
                    {{"store_id", store}, {"plan", e.plan}});
        }
        const GcraParams g = gcra_params(plan_named(e.plan));
        for (auto& w : waiters) w(g);
      },
      options_.timeout_ms);
}

void RateLimiter::run(const StoreId& store, const GcraParams& g, std::int64_t n, bool peek,
                      AdmitCallback done) {
  std::vector<std::string> args{std::to_string(g.emission_us), std::to_string(g.tolerance_us)};
  if (n != 1 || peek) args.push_back(std::to_string(n));
  if (peek) args.emplace_back("peek");
  redis_.eval(
      script_, {Keyspace::rate_key(store)}, std::move(args),
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        const Reply& reply = r.value();
        if (reply.is_error()) return done(make_error(Errc::internal, "gcra.lua: " + reply.str));
        Admission a;
        if (!reply.is_array() || reply.elements.size() != 2 ||
            !reply.elements[0].as_int(a.granted) || !reply.elements[1].as_int(a.retry_after_ms)) {
          return done(make_error(Errc::internal, "gcra.lua: unexpected reply"));
        }
        a.allowed = a.granted > 0;
        done(a);
      },
      options_.timeout_ms);
}

void RateLimiter::evict_if_full() {
  if (cache_.size() < options_.max_cached_stores) return;
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (!it->second.fetching && it->second.waiters.empty()) {
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace sagaflow::store
