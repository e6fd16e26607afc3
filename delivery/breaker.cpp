// The circuit breaker of one endpoint (CONTRACT.md section 9), a pure state machine.
#include "delivery/breaker.hpp"

#include <charconv>

#include <fmt/format.h>

namespace sagaflow::delivery {

namespace {

int threshold(const BreakerConfig& c) noexcept {
  return c.failures_to_open < 1 ? 1 : c.failures_to_open;
}

void open_until(BreakerState& s, const BreakerConfig& c, Millis now) noexcept {
  s.circuit = Circuit::open;
  s.failures = threshold(c);
  s.until_ms = now + c.open_ms;
}

template <class Int>
bool parse_int(std::string_view text, Int& out) noexcept {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

}  // namespace

std::string_view to_string(Circuit c) noexcept {
  switch (c) {
    case Circuit::closed:
      return "closed";
    case Circuit::open:
      return "open";
    case Circuit::half_open:
      return "half_open";
  }
  return "closed";
}

PermitResult permit(BreakerState& s, const BreakerConfig& c, Millis now) noexcept {
  switch (s.circuit) {
    case Circuit::closed:
      return {Permit::attempt, 0};
    case Circuit::open:
    case Circuit::half_open:
      // Open: the probe may go once the open time is up. Half open: the probe is out until its
      // lease ends; after that it is taken over (its worker is presumed dead).
      if (now < s.until_ms) return {Permit::wait, s.until_ms};
      s.circuit = Circuit::half_open;
      s.until_ms = now + c.probe_lease_ms;
      return {Permit::probe, 0};
  }
  return {Permit::attempt, 0};
}

void record(BreakerState& s, const BreakerConfig& c, Permit p, bool success, Millis now) noexcept {
  if (p == Permit::wait) return;  // nothing was attempted
  if (success) {
    s = BreakerState{};
    return;
  }
  switch (s.circuit) {
    case Circuit::closed:
      if (++s.failures >= threshold(c)) open_until(s, c, now);
      return;
    case Circuit::half_open:
      // The probe failed: open again. A late failure of an attempt permitted before the circuit
      // opened does not disturb the probe that is out.
      if (p == Permit::probe) open_until(s, c, now);
      return;
    case Circuit::open:
      return;  // already open: a late failure changes nothing
  }
}

std::string encode(const BreakerState& s) {
  return fmt::format("{} {} {}", to_string(s.circuit), s.failures, s.until_ms);
}

BreakerState decode(std::string_view text) noexcept {
  const std::size_t a = text.find(' ');
  if (a == std::string_view::npos) return {};
  const std::size_t b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return {};
  const std::string_view name = text.substr(0, a);
  BreakerState s;
  if (name == "closed") {
    s.circuit = Circuit::closed;
  } else if (name == "open") {
    s.circuit = Circuit::open;
  } else if (name == "half_open") {
    s.circuit = Circuit::half_open;
  } else {
    return {};
  }
  if (!parse_int(text.substr(a + 1, b - a - 1), s.failures) || s.failures < 0) return {};
  if (!parse_int(text.substr(b + 1), s.until_ms)) return {};
  return s;
}

}  // namespace sagaflow::delivery
