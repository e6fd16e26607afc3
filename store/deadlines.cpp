#include "store/deadlines.hpp"

#include <utility>

#include "store/impl/scripts.hpp"

namespace sagaflow::store {

Deadlines::Deadlines(RedisClient& redis, Millis timeout_ms)
    : redis_(redis), timeout_ms_(timeout_ms) {
  script_ = redis_.register_script("claim_deadlines.lua", std::string(impl::kClaimDeadlinesScript));
}

void Deadlines::claim_due(int partition, int limit, Millis lease_ms, ClaimCallback done) {
  if (limit < 1) limit = 1;
  if (lease_ms < 1) lease_ms = 1;
  redis_.eval(
      script_, {Keyspace::deadlines_key(partition)},
      {std::to_string(limit), std::to_string(lease_ms)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        Reply& reply = r.value();
        if (reply.is_error()) {
          return done(make_error(Errc::internal, "claim_deadlines.lua: " + reply.str));
        }
        DueDeadlines out;
        if (!reply.is_array() || reply.elements.empty() || !reply.elements[0].as_int(out.now_ms)) {
          return done(make_error(Errc::internal, "claim_deadlines.lua: unexpected reply"));
        }
        out.orders.reserve(reply.elements.size() - 1);
        for (std::size_t i = 1; i < reply.elements.size(); ++i) {
          out.orders.emplace_back(std::move(reply.elements[i].str));
        }
        done(std::move(out));
      },
      timeout_ms_);
}

void Deadlines::extend(int partition, const OrderId& order, Millis due_ms,
                       std::function<void(Status)> done) {
  redis_.command(
      {"ZADD", Keyspace::deadlines_key(partition), "XX", "GT", std::to_string(due_ms), order.str()},
      [done = std::move(done)](Result<Reply> r) {
        if (!r.ok()) return done(std::move(r).error());
        if (r.value().is_error()) {
          return done(make_error(Errc::internal, "ZADD XX GT: " + r.value().str));
        }
        done(Status::success());
      },
      timeout_ms_);
}

}  // namespace sagaflow::store
