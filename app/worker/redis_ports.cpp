#include "app/worker/redis_ports.hpp"

#include "app/commands.hpp"

namespace sagaflow::app {

void RedisAdmission::admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                                 std::function<void(Result<std::int64_t>)> done) {
  limiter_.admit_up_to(store, n, peek, [done = std::move(done)](Result<store::Admission> r) {
    if (!r) return done(std::move(r).error());
    done(r->granted);
  });
}

void RedisAdmission::note_delayed(const StoreId&) {
  redis_.command({"INCR", std::string(kRateLimitedKey)}, [](Result<store::Reply>) {});
}

void RedisAdmission::plan_for_commit(
    const StoreId& store, std::function<void(Result<std::optional<store::GcraParams>>)> done) {
  if (!limiter_.admits_in_apply()) return done(std::optional<store::GcraParams>{});
  limiter_.plan_of(store, [done = std::move(done)](Result<store::GcraParams> plan) {
    if (!plan) return done(std::move(plan).error());
    done(std::optional<store::GcraParams>(plan.value()));
  });
}

}  // namespace sagaflow::app
