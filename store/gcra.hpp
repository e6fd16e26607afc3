#pragma once
// GCRA parameters of a rate plan (pure math, unit-tested). A plan "rate per period, burst b"
// becomes an emission interval T = ceil(period / rate) and a tolerance tau = (b - 1) * T, both
// in microseconds. The script admits a request at time now when TAT - tau <= now, then sets
// TAT = max(TAT, now) + T. In any window of length W it admits at most b + floor(W / T) requests,
// and because T is rounded UP, W / T <= rate * W / period: the contract's bound
// "burst + rate x window" holds exactly, whatever the number of clients (one key, one script).
#include <cstdint>

#include "core/config.hpp"

namespace sagaflow::store {

struct GcraParams {
  std::int64_t emission_us = 0;   // T
  std::int64_t tolerance_us = 0;  // tau
};

// A plan with rate <= 0, period_ms <= 0 or burst <= 0 is clamped to the strictest sane value
// (one request per period, burst 1) rather than admitting everything.
constexpr GcraParams gcra_params(const RatePlan& plan) noexcept {
  const std::int64_t rate = plan.rate > 0 ? plan.rate : 1;
  const std::int64_t period_us = (plan.period_ms > 0 ? plan.period_ms : 1000) * 1000;
  const std::int64_t burst = plan.burst > 0 ? plan.burst : 1;
  GcraParams g;
  g.emission_us = (period_us + rate - 1) / rate;
  if (g.emission_us < 1) g.emission_us = 1;
  g.tolerance_us = (burst - 1) * g.emission_us;
  return g;
}

// Upper bound of admissions in a window of window_us (the test oracle).
constexpr std::int64_t gcra_max_admitted(const GcraParams& g, std::int64_t window_us) noexcept {
  return 1 + (window_us + g.tolerance_us) / g.emission_us;
}

}  // namespace sagaflow::store
