#include "app/impl/exit_backstop.hpp"

#include <uv.h>

#include <cstdio>
#include <cstdlib>

#include "core/log.hpp"

namespace sagaflow::app {

void arm_exit_backstop(uv_loop_s* loop, Millis ms) {
  // Static storage: the handle outlives every owner; the loop's final walk closes it.
  static uv_timer_t timer;
  static bool armed = false;
  if (armed) return;
  armed = true;
  uv_timer_init(loop, &timer);
  uv_timer_start(
      &timer,
      [](uv_timer_t*) {
        log::warn("shutdown limit reached; exiting (unacknowledged work is redelivered)");
        std::fflush(nullptr);
        std::_Exit(0);
      },
      static_cast<std::uint64_t>(ms), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer));
}

}  // namespace sagaflow::app
