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

TEST_CASE("a job that finishes inside its start lets the next one of its order run", "[lanes]") {
  // The pipeline's start may run a job to its end at once (a saga read from memory and a step
  // that changes nothing): finish() from inside start() must start the next job, in order.
  std::vector<int> started;
  OrderLanes<Job>* self = nullptr;
  std::vector<std::unique_ptr<Job>> finished;
  OrderLanes<Job> lanes([&](Job& j) {
    started.push_back(j.n);
    if (j.n % 2 == 0) finished.push_back(self->finish(j.order));  // even ones end at once
  });
  self = &lanes;
  lanes.submit("a", std::make_unique<Job>(Job{"a", 1}));
  for (int n = 2; n <= 6; ++n) lanes.submit("a", std::make_unique<Job>(Job{"a", n}));
  CHECK(started == std::vector<int>{1});
  finished.push_back(lanes.finish("a"));  // 1 ends: 2 starts and ends at once, then 3 runs
  CHECK(started == std::vector<int>{1, 2, 3});
  finished.push_back(lanes.finish("a"));  // 3 ends: 4 (ends at once), 5 runs
  finished.push_back(lanes.finish("a"));  // 5 ends: 6 runs and ends at once; the lane empties
  CHECK(started == std::vector<int>{1, 2, 3, 4, 5, 6});
  CHECK(lanes.jobs() == 0);
  CHECK(lanes.orders() == 0);
  REQUIRE(finished.size() == 6);
  for (const auto& f : finished) CHECK(f != nullptr);
}

TEST_CASE("lanes are reused across orders and a long queue of one order stays in order",
          "[lanes]") {
  std::vector<int> started;
  OrderLanes<Job> lanes([&](Job& j) { started.push_back(j.n); });
  // Many orders one after the other: each lane empties and its node serves the next order
  for (int i = 0; i < 1000; ++i) {
    const std::string order = "order_with_a_long_id_" + std::to_string(i);
    lanes.submit(order, std::make_unique<Job>(Job{order, i}));
    REQUIRE(lanes.finish(order) != nullptr);
  }
  CHECK(lanes.orders() == 0);
  CHECK(started.size() == 1000);
  // One order with 500 queued jobs, finished one by one while more arrive: strictly FIFO
  started.clear();
  int next = 0;
  for (; next < 300; ++next) lanes.submit("hot", std::make_unique<Job>(Job{"hot", next}));
  for (int i = 0; i < 300; ++i) {
    REQUIRE(lanes.finish("hot") != nullptr);
    if (next < 500) {
      lanes.submit("hot", std::make_unique<Job>(Job{"hot", next}));
      ++next;
    }
  }
  while (lanes.finish("hot") != nullptr) {
  }
  REQUIRE(started.size() == 500);
  for (int i = 0; i < 500; ++i) CHECK(started[static_cast<std::size_t>(i)] == i);
  CHECK(lanes.jobs() == 0);
}
