#pragma once
// The circuit breaker of one endpoint (CONTRACT.md section 9), as a pure state machine. The
// state is shared by every deliver worker through Redis: a worker reads it, asks permit(),
// and writes it back with a compare-and-set on the encoded text when permit() or record()
// changed it (a lost race re-reads and asks again), so exactly one probe goes out across all
// workers when an open circuit's time is up.
//
//   closed    --`failures_to_open` consecutive failures-->  open (until now + open_ms)
//   open      --time is up, permit() claims the probe-->     half_open (probe leased)
//   half_open --the probe succeeds-->                        closed
//   half_open --the probe fails-->                           open again (until now + open_ms)
//   half_open --the probe's lease ran out (its worker died)--> the next permit() probes again
// While open (and while a live probe is out) permit() says wait: no attempt is made and none
// is counted. Answers that do not count (429 / 503 with Retry-After) are not recorded.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"

namespace sagaflow::delivery {

enum class Circuit : std::uint8_t { closed, open, half_open };
std::string_view to_string(Circuit c) noexcept;  // "closed", "open", "half_open"

struct BreakerConfig {
  int failures_to_open = 5;       // SAGAFLOW_BREAKER_FAILURES (>= 1)
  Millis open_ms = 30000;         // SAGAFLOW_BREAKER_OPEN_MS
  Millis probe_lease_ms = 20000;  // a probe not reported by then is taken over
};

struct BreakerState {
  Circuit circuit = Circuit::closed;
  int failures = 0;     // consecutive failures while closed
  Millis until_ms = 0;  // open: when it may probe; half_open: when the probe's lease ends
  bool operator==(const BreakerState&) const = default;
};

enum class Permit : std::uint8_t {
  attempt,  // closed: go
  probe,    // the one probe (the state is now half_open, leased to the caller)
  wait,     // open, or a live probe is out: retry at `retry_at_ms`
};

struct PermitResult {
  Permit permit = Permit::attempt;
  Millis retry_at_ms = 0;  // for wait
};

// What an attempt may do now; may change `s` (open -> half_open when the probe is claimed, a
// half_open whose lease ran out is leased again).
PermitResult permit(BreakerState& s, const BreakerConfig& c, Millis now) noexcept;
// The outcome of an attempt made under `p`. A success closes (and resets the count); a failure
// counts while closed (opening at the threshold) and re-opens after a failed probe. A late
// failure of a plain attempt while open or half_open changes nothing (the probe decides), and
// p == wait records nothing. failures_to_open below 1 counts as 1.
void record(BreakerState& s, const BreakerConfig& c, Permit p, bool success, Millis now) noexcept;

// The text kept in Redis: "<circuit> <failures> <until_ms>", e.g. "open 5 1700000030000". The
// empty string (no key) is a fresh closed circuit; anything unreadable also reads as closed.
std::string encode(const BreakerState& s);
BreakerState decode(std::string_view text) noexcept;

}  // namespace sagaflow::delivery
