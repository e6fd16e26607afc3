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

}  // namespace sagaflow::app
