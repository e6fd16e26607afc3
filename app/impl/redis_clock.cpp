#include "app/impl/redis_clock.hpp"

#include <utility>

#include "core/log.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::app {

RedisClock::RedisClock(store::RedisClient& redis, Millis host_skew_ms)
    : redis_(redis), host_(host_skew_ms) {}

void RedisClock::sync(std::function<void()> on_first) {
  if (asking_ || !redis_.connected()) return;
  asking_ = true;
  const Millis sent = host_.now_ms();
  redis_.command({"TIME"}, [this, sent, on_first = std::move(on_first)](Result<store::Reply> r) {
    asking_ = false;
    std::int64_t s = 0, us = 0;
    if (!r || !r->is_array() || r->elements.size() != 2 || !r->elements[0].as_int(s) ||
        !r->elements[1].as_int(us)) {
      return;  // Redis away: the last offset holds; the next tick tries again
    }
    const bool first = !clock_.synced();
    clock_.observe(s * 1000 + us / 1000, sent, host_.now_ms());
    if (first) {
      log::info("clock synced to Redis TIME", {{"offset_ms", clock_.offset_ms()}});
      if (on_first) on_first();
    }
  });
}

}  // namespace sagaflow::app
