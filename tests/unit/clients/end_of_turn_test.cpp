// EndOfTurn (clients/uv_helpers): the hook that uncorks a RabbitMQ connection runs once,
// after the turn's callbacks, whether it was armed from an I/O-phase callback or a timer, and
// never after its owner is gone. A real libuv loop, no sockets.
#include <catch2/catch.hpp>

#include <uv.h>

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
