// Per-order serialization: one running job per order, FIFO within an order, orders independent.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "app/worker/order_lanes.hpp"

using sagaflow::app::OrderLanes;

namespace {
struct Job {
  std::string order;
  int n = 0;
};
}  // namespace

TEST_CASE("jobs of one order run one at a time in order; other orders are not blocked", "[lanes]") {
  std::vector<std::string> started;
  OrderLanes<Job> lanes([&](Job& j) { started.push_back(j.order + "#" + std::to_string(j.n)); });
  // Given two jobs for order a and one for order b
  lanes.submit("a", std::make_unique<Job>(Job{"a", 1}));
  lanes.submit("a", std::make_unique<Job>(Job{"a", 2}));
  lanes.submit("b", std::make_unique<Job>(Job{"b", 1}));
  // Then a#1 and b#1 run, a#2 waits
  CHECK(started == std::vector<std::string>{"a#1", "b#1"});
  CHECK(lanes.jobs() == 3);
  // When a#1 finishes, a#2 starts
  auto done = lanes.finish("a");
  REQUIRE(done);
  CHECK(done->n == 1);
  CHECK(started.back() == "a#2");
  lanes.finish("a");
  lanes.finish("b");
  CHECK(lanes.jobs() == 0);
  CHECK(lanes.orders() == 0);
  CHECK(lanes.finish("a") == nullptr);
}
