#pragma once
// Retry backoff: pure logic, unit-tested (tests/unit/consumers).
//
// The retry after delivery number `attempt` waits d = min(cap, base * 2^(attempt-1)) with
// "equal jitter": a uniform delay in [d/2, d]. RabbitMQ holds the copy in the smallest delay
// tier whose TTL is >= the delay (the per-message expiration gives the exact jittered delay);
// a delay above the largest tier is clamped to it. After max_attempts deliveries the message
// is dead-lettered (retries_exhausted) instead.
#include <cstdint>
#include <vector>

namespace sagaflow {

struct RetryPolicy {
  int max_attempts = 8;                                              // SAGAFLOW_MAX_ATTEMPTS
  std::int64_t base_ms = 1000;                                       // first retry waits 0.5..1 s
  std::int64_t cap_ms = 120000;                                      // longest wait
  std::vector<std::int64_t> tiers_ms = {1000, 5000, 30000, 120000};  // = the applied topology
};

struct RetryPlan {
  std::int64_t delay_ms = 0;  // per-message expiration
  std::int64_t tier_ms = 0;   // which delay queue holds it
};

// True when delivery number `attempt` was the last one allowed.
inline bool retries_exhausted(const RetryPolicy& p, int attempt) noexcept {
  return attempt >= p.max_attempts;
}

// unit_random in [0, 1): the jitter draw (injected, so tests are deterministic).
RetryPlan plan_retry(const RetryPolicy& policy, int attempt, double unit_random) noexcept;

}  // namespace sagaflow
