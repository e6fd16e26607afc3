// EndOfTurn (clients/uv_helpers): the hook that writes a RabbitMQ connection's publishes runs once,
// after the turn's callbacks, whether it was armed from an I/O-phase callback or a timer, and
// never after its owner is gone. A real libuv loop, no sockets.
#include <catch2/catch.hpp>

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "clients/uv_helpers.hpp"

using sagaflow::clients::EndOfTurn;

namespace {
struct LoopFixture {
  uv_loop_t loop{};
  LoopFixture() { uv_loop_init(&loop); }
  ~LoopFixture() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};
}  // namespace

TEST_CASE("EndOfTurn runs once after the turn's other callbacks, armed from a timer", "[uv]") {
  LoopFixture f;
  std::vector<std::string> order;
  {
    EndOfTurn hook(&f.loop);
    uv_timer_t timer;
    uv_timer_init(&f.loop, &timer);
    struct Ctx {
      EndOfTurn* hook;
      std::vector<std::string>* order;
    } ctx{&hook, &order};
    timer.data = &ctx;
    uv_timer_start(
        &timer,
        [](uv_timer_t* t) {
          auto* c = static_cast<Ctx*>(t->data);
          c->order->push_back("write 1");
          c->hook->arm([c] { c->order->push_back("flush"); });
          c->order->push_back("write 2");
          c->hook->arm([c] { c->order->push_back("second flush"); });  // kept: the first
        },
        0, 0);
    // A timer in the same turn runs before the hook; the loop then has nothing to wait for.
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK_FALSE(hook.armed());
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&f.loop, UV_RUN_NOWAIT);  // the timer's close completes while it exists
  }
  REQUIRE(order == std::vector<std::string>{"write 1", "write 2", "flush"});
}

TEST_CASE("EndOfTurn can be armed again after it ran, and is dropped with its owner", "[uv]") {
  LoopFixture f;
  int fired = 0;
  {
    EndOfTurn hook(&f.loop);
    hook.arm([&] { ++fired; });
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK(fired == 1);
    hook.arm([&] { ++fired; });
    uv_run(&f.loop, UV_RUN_NOWAIT);
    CHECK(fired == 2);
    hook.arm([&] { fired += 100; });  // destroyed before the loop runs again
  }
  uv_run(&f.loop, UV_RUN_NOWAIT);
  CHECK(fired == 2);
}

TEST_CASE("EndOfTurn armed in a prepare callback runs in that turn, not after the loop waits",
          "[uv]") {
  LoopFixture f;
  bool fired = false, timer_fired = false;
  EndOfTurn hook(&f.loop);
  // A timer 10 s away: the loop's wait for I/O would block until it, were the hook not due.
  uv_timer_t timer;
  uv_timer_init(&f.loop, &timer);
  timer.data = &timer_fired;
  uv_timer_start(
      &timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 10000, 0);
  // Another prepare callback arms the hook: the idle phase of this turn is over by then.
  struct Ctx {
    EndOfTurn* hook;
    bool* fired;
  } ctx{&hook, &fired};
  uv_prepare_t prepare;
  uv_prepare_init(&f.loop, &prepare);
  prepare.data = &ctx;
  uv_prepare_start(&prepare, [](uv_prepare_t* p) {
    auto* c = static_cast<Ctx*>(p->data);
    uv_prepare_stop(p);
    c->hook->arm([c] { *c->fired = true; });
  });
  const std::uint64_t t0 = uv_now(&f.loop);
  uv_run(&f.loop, UV_RUN_ONCE);
  uv_update_time(&f.loop);
  CHECK(fired);
  CHECK_FALSE(timer_fired);
  CHECK(uv_now(&f.loop) - t0 < 5000);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare), nullptr);
  uv_run(&f.loop, UV_RUN_NOWAIT);
}
