// HeldRetries and FlowGate: retries held until their not-before, the pause of the retry
// partitions, and the window's hysteresis. No broker, no clock but the numbers given.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <vector>

#include "consumers/kafka/flow_gate.hpp"
#include "consumers/kafka/held_retries.hpp"

using namespace sagaflow::kafka_source;

TEST_CASE("a retry is held only while its not-before is in the future", "[kafka][held]") {
  CHECK(HeldRetries::must_hold(1001, 1000));
  CHECK_FALSE(HeldRetries::must_hold(1000, 1000));
  CHECK_FALSE(HeldRetries::must_hold(999, 1000));
  CHECK_FALSE(HeldRetries::must_hold(0, 1000));  // no header
}

TEST_CASE("a not-before far in the future is bounded by the longest backoff + 60 s",
          "[kafka][held]") {
  CHECK(HeldRetries::bounded(5000, 1000, 30000) == 5000);
  CHECK(HeldRetries::bounded(10'000'000, 1000, 30000) == 1000 + 30000 + 60000);
  CHECK(HeldRetries::bounded(0, 1000, 30000) == 0);
}

TEST_CASE("held retries come out when due, earliest first", "[kafka][held]") {
  HeldRetries h(10);
  h.hold(3, 300);
  h.hold(1, 100);
  h.hold(2, 200);
  CHECK(h.waiting() == 3);
  CHECK(h.next_due() == std::optional<std::int64_t>(100));
  CHECK_FALSE(h.pop_due(99));
  std::vector<std::uint64_t> due;
  while (auto t = h.pop_due(250)) due.push_back(*t);
  CHECK(due == std::vector<std::uint64_t>{1, 2});
  CHECK(h.next_due() == std::optional<std::int64_t>(300));
  // the caller counts what left the hold
  h.left();
  h.left();
  CHECK(h.waiting() == 1);
}

TEST_CASE("a revoked hold still comes out when due; counting it twice is harmless",
          "[kafka][held]") {
  HeldRetries h(10);
  h.hold(9, 100);
  h.left();  // its partition was revoked
  CHECK(h.waiting() == 0);
  CHECK(h.pop_due(100) == std::optional<std::uint64_t>(9));  // the caller finds no record
  h.left();
  CHECK(h.waiting() == 0);
}

TEST_CASE("the retry partitions pause at max_held and resume at half", "[kafka][held]") {
  HeldRetries h(4);
  for (std::uint64_t t = 0; t < 3; ++t) h.hold(t, 1000);
  CHECK_FALSE(h.update_paused());
  h.hold(3, 1000);
  CHECK(h.update_paused());
  h.left();  // 3 held
  CHECK(h.update_paused());
  h.left();  // 2 held: half
  CHECK_FALSE(h.update_paused());
  CHECK_FALSE(h.paused());
}

TEST_CASE("clear forgets every hold", "[kafka][held]") {
  HeldRetries h(1);
  h.hold(1, 10);
  CHECK(h.update_paused());
  h.clear();
  CHECK(h.waiting() == 0);
  CHECK_FALSE(h.next_due());
  CHECK_FALSE(h.update_paused());
}

TEST_CASE("max_held 0 counts as 1", "[kafka][held]") {
  HeldRetries h(0);
  h.hold(1, 10);
  CHECK(h.update_paused());
}

TEST_CASE("the window is full at max_in_flight and reopens at three quarters", "[kafka][flow]") {
  FlowGate g(8);
  CHECK(g.limit() == 8);
  CHECK_FALSE(g.full(7));
  CHECK(g.full(8));
  CHECK_FALSE(g.update(7));
  CHECK_FALSE(g.closed());
  CHECK_FALSE(g.update(8));
  CHECK(g.closed());
  CHECK_FALSE(g.update(7));  // still closed above 3/4
  CHECK(g.update(6));        // reopens: read what librdkafka buffered meanwhile
  CHECK_FALSE(g.closed());
  CHECK_FALSE(g.update(6));  // reopening is reported once
}

TEST_CASE("a turn that found the window full closes the gate", "[kafka][flow]") {
  FlowGate g(4);
  g.close();
  CHECK(g.closed());
  CHECK(g.update(3));
}

TEST_CASE("the span cap is 16 windows, at least 1024; a window is at least 1", "[kafka][flow]") {
  CHECK(FlowGate(256).span_cap() == 4096);
  CHECK(FlowGate(10).span_cap() == 1024);
  CHECK(FlowGate(0).limit() == 1);
}
