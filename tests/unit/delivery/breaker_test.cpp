// The per-endpoint circuit breaker as a pure state machine: N consecutive failures open it, one
// probe at a time after the open time, the probe decides, a lost probe is taken over.
#include <catch2/catch.hpp>

#include <string>

#include "delivery/breaker.hpp"

using namespace sagaflow;
using namespace sagaflow::delivery;

namespace {
constexpr Millis kT0 = 1'700'000'000'000;
const BreakerConfig kConfig{3, 30'000, 20'000};

// A failed attempt made while closed, as a worker would do it.
void fail_attempt(BreakerState& s, Millis now) {
  const PermitResult p = permit(s, kConfig, now);
  REQUIRE(p.permit == Permit::attempt);
  record(s, kConfig, p.permit, false, now);
}

BreakerState opened_at(Millis now) {
  BreakerState s;
  for (int i = 0; i < kConfig.failures_to_open; ++i) fail_attempt(s, now);
  REQUIRE(s.circuit == Circuit::open);
  return s;
}
}  // namespace

TEST_CASE("the circuit names", "[breaker]") {
  CHECK(to_string(Circuit::closed) == "closed");
  CHECK(to_string(Circuit::open) == "open");
  CHECK(to_string(Circuit::half_open) == "half_open");
}

TEST_CASE("a closed circuit permits attempts", "[breaker]") {
  BreakerState s;
  CHECK(permit(s, kConfig, kT0).permit == Permit::attempt);
  CHECK(s == BreakerState{});  // asking changes nothing
}

TEST_CASE("the circuit opens after exactly N consecutive failures", "[breaker]") {
  // Given a closed circuit and N = 3
  BreakerState s;
  // When 2 attempts fail, it stays closed, counting
  fail_attempt(s, kT0);
  fail_attempt(s, kT0 + 1);
  CHECK(s.circuit == Circuit::closed);
  CHECK(s.failures == 2);
  // When the 3rd fails, it opens until now + open_ms
  fail_attempt(s, kT0 + 2);
  CHECK(s.circuit == Circuit::open);
  CHECK(s.until_ms == kT0 + 2 + kConfig.open_ms);
}

TEST_CASE("a success resets the failure count", "[breaker]") {
  // Given two failures
  BreakerState s;
  fail_attempt(s, kT0);
  fail_attempt(s, kT0);
  // When an attempt succeeds
  record(s, kConfig, Permit::attempt, true, kT0);
  CHECK(s.failures == 0);
  // Then two more failures do not open it: they are not consecutive with the first two
  fail_attempt(s, kT0);
  fail_attempt(s, kT0);
  CHECK(s.circuit == Circuit::closed);
  fail_attempt(s, kT0);
  CHECK(s.circuit == Circuit::open);
}

TEST_CASE("an open circuit says wait until its open time is up", "[breaker]") {
  BreakerState s = opened_at(kT0);
  const BreakerState before = s;
  // While open: wait, retry at the end of the open time, nothing changes or is counted
  for (Millis now : {kT0, kT0 + 1, kT0 + kConfig.open_ms - 1}) {
    const PermitResult p = permit(s, kConfig, now);
    CHECK(p.permit == Permit::wait);
    CHECK(p.retry_at_ms == kT0 + kConfig.open_ms);
    CHECK(s == before);
  }
}

TEST_CASE("exactly one probe goes out when the open time is up", "[breaker]") {
  BreakerState s = opened_at(kT0);
  const Millis up = kT0 + kConfig.open_ms;
  // When the time is up, the first permit() claims the probe, leased until now + lease
  const PermitResult first = permit(s, kConfig, up);
  CHECK(first.permit == Permit::probe);
  CHECK(s.circuit == Circuit::half_open);
  CHECK(s.until_ms == up + kConfig.probe_lease_ms);
  // Then a second permit() while the probe is leased says wait, until the lease ends
  const PermitResult second = permit(s, kConfig, up + 1);
  CHECK(second.permit == Permit::wait);
  CHECK(second.retry_at_ms == up + kConfig.probe_lease_ms);
  CHECK(permit(s, kConfig, up + kConfig.probe_lease_ms - 1).permit == Permit::wait);
}

TEST_CASE("the shared state in Redis lets one worker of many probe", "[breaker]") {
  // Given the encoded state two workers read once the open time is up
  const std::string stored = encode(opened_at(kT0));
  const Millis up = kT0 + kConfig.open_ms;
  // When worker A claims the probe and wins the compare-and-set
  BreakerState a = decode(stored);
  REQUIRE(permit(a, kConfig, up).permit == Permit::probe);
  const std::string after_a = encode(a);
  // Then worker B, whose compare-and-set on `stored` lost, re-reads and is told to wait
  BreakerState b = decode(after_a);
  CHECK(permit(b, kConfig, up + 5).permit == Permit::wait);
}

TEST_CASE("a successful probe closes the circuit", "[breaker]") {
  BreakerState s = opened_at(kT0);
  const Millis up = kT0 + kConfig.open_ms;
  REQUIRE(permit(s, kConfig, up).permit == Permit::probe);
  record(s, kConfig, Permit::probe, true, up + 100);
  CHECK(s == BreakerState{});
  CHECK(permit(s, kConfig, up + 101).permit == Permit::attempt);
}

TEST_CASE("a failed probe opens the circuit again", "[breaker]") {
  BreakerState s = opened_at(kT0);
  const Millis up = kT0 + kConfig.open_ms;
  REQUIRE(permit(s, kConfig, up).permit == Permit::probe);
  // When the probe fails at up + 100
  record(s, kConfig, Permit::probe, false, up + 100);
  // Then it is open for another open_ms from then
  CHECK(s.circuit == Circuit::open);
  CHECK(s.until_ms == up + 100 + kConfig.open_ms);
  const PermitResult p = permit(s, kConfig, up + 200);
  CHECK(p.permit == Permit::wait);
  CHECK(p.retry_at_ms == up + 100 + kConfig.open_ms);
  // And the next probe goes out when that time is up
  CHECK(permit(s, kConfig, up + 100 + kConfig.open_ms).permit == Permit::probe);
}

TEST_CASE("a probe whose lease ran out is probed again", "[breaker]") {
  // Given a probe claimed and never reported (its worker died)
  BreakerState s = opened_at(kT0);
  const Millis up = kT0 + kConfig.open_ms;
  REQUIRE(permit(s, kConfig, up).permit == Permit::probe);
  // When the lease ends, the next permit() is a new probe with a new lease
  const Millis expired = up + kConfig.probe_lease_ms;
  CHECK(permit(s, kConfig, expired).permit == Permit::probe);
  CHECK(s.circuit == Circuit::half_open);
  CHECK(s.until_ms == expired + kConfig.probe_lease_ms);
  // And, again, only one: the next caller waits
  CHECK(permit(s, kConfig, expired + 1).permit == Permit::wait);
}

TEST_CASE("a late failure of an attempt made before opening does not cancel the probe",
          "[breaker]") {
  BreakerState s = opened_at(kT0);
  const Millis up = kT0 + kConfig.open_ms;
  REQUIRE(permit(s, kConfig, up).permit == Permit::probe);
  const BreakerState probing = s;
  // When an attempt permitted while closed reports its failure now
  record(s, kConfig, Permit::attempt, false, up + 1);
  // Then the probe is still out
  CHECK(s == probing);
  // And a late failure while open does not extend the open time
  BreakerState open = opened_at(kT0);
  const BreakerState was = open;
  record(open, kConfig, Permit::attempt, false, kT0 + 10);
  CHECK(open == was);
}

TEST_CASE("a threshold below 1 opens on the first failure", "[breaker]") {
  const BreakerConfig one{0, 1000, 1000};
  BreakerState s;
  record(s, one, Permit::attempt, false, kT0);
  CHECK(s.circuit == Circuit::open);
}

TEST_CASE("encode and decode round-trip every state", "[breaker]") {
  const BreakerState states[] = {
      {},
      {Circuit::closed, 2, 0},
      {Circuit::open, 5, 1'700'000'030'000},
      {Circuit::half_open, 5, 1'700'000'050'000},
  };
  for (const BreakerState& s : states) {
    const std::string text = encode(s);
    INFO(text);
    CHECK(decode(text) == s);
  }
  CHECK(encode({Circuit::open, 5, 1'700'000'030'000}) == "open 5 1700000030000");
}

TEST_CASE("an empty or unreadable state decodes as a fresh closed circuit", "[breaker]") {
  for (const char* text :
       {"", "open", "open 5", "open 5 x", "ajar 1 2", "open -1 5", "open 5 1700000030000 extra",
        "open  5 1700000030000", "Open 5 1700000030000", "half_open 1 99999999999999999999999"}) {
    INFO(text);
    CHECK(decode(text) == BreakerState{});
  }
}
