#pragma once
// The last resort of a drain: SIGTERM must end the process with exit code 0 within 10 s in
// every case (CONTRACT.md section 4). arm_exit_backstop() starts a timer of its own on the
// loop (unref'd, so it never keeps the loop alive, and out of reach of the owner's timers,
// which a drain closes) that exits the process if it is still running after `ms`. Nothing is
// lost by it: what is not yet acknowledged is redelivered by the broker, and what is not yet
// sent is in Redis (outbox, due deliveries). Once per process.
#include "core/clock.hpp"

struct uv_loop_s;

namespace sagaflow::app {

void arm_exit_backstop(uv_loop_s* loop, Millis ms);

}  // namespace sagaflow::app
