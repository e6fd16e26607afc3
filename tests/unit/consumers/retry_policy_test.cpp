// Retry backoff: exponential with equal jitter, mapped onto the delay tiers, capped; the tier
// names the topology declares.
#include <catch2/catch.hpp>

#include "consumers/retry_policy.hpp"
#include "topology/names.hpp"

using namespace sagaflow;

TEST_CASE("the delay doubles per attempt and jitters within [d/2, d]", "[retry]") {
  const RetryPolicy p{.max_attempts = 8,
                      .base_ms = 1000,
                      .cap_ms = 120000,
                      .tiers_ms = {1000, 5000, 30000, 120000}};
  // Given the lowest and highest jitter draws, when planning attempts 1..4
  for (int attempt = 1; attempt <= 4; ++attempt) {
    const std::int64_t d = 1000LL << (attempt - 1);
    const RetryPlan lo = plan_retry(p, attempt, 0.0);
    const RetryPlan hi = plan_retry(p, attempt, 0.999999);
    // Then the delays span [d/2, d]
    CHECK(lo.delay_ms == d / 2);
    CHECK(hi.delay_ms >= d - 1);
    CHECK(hi.delay_ms <= d);
    // And the tier holds at least the delay
    CHECK(lo.tier_ms >= lo.delay_ms);
    CHECK(hi.tier_ms >= hi.delay_ms);
  }
}

TEST_CASE("the smallest tier that holds the delay is chosen", "[retry]") {
  const RetryPolicy p{.max_attempts = 8,
                      .base_ms = 1000,
                      .cap_ms = 120000,
                      .tiers_ms = {1000, 5000, 30000, 120000}};
  CHECK(plan_retry(p, 1, 0.5).tier_ms == 1000);    // 750 ms
  CHECK(plan_retry(p, 2, 0.5).tier_ms == 5000);    // 1500 ms
  CHECK(plan_retry(p, 5, 0.5).tier_ms == 30000);   // 12 s
  CHECK(plan_retry(p, 7, 0.5).tier_ms == 120000);  // 48 s
}

TEST_CASE("delays are capped and clamped to the largest tier", "[retry]") {
  const RetryPolicy p{
      .max_attempts = 50, .base_ms = 1000, .cap_ms = 120000, .tiers_ms = {1000, 5000}};
  const RetryPlan plan = plan_retry(p, 40, 0.9);
  CHECK(plan.tier_ms == 5000);
  CHECK(plan.delay_ms == 5000);
  const RetryPolicy uncapped{
      .max_attempts = 50, .base_ms = 1000, .cap_ms = 120000, .tiers_ms = {1000000}};
  CHECK(plan_retry(uncapped, 40, 0.999999).delay_ms <= 120000);
}

TEST_CASE("retries are exhausted at max_attempts deliveries", "[retry]") {
  const RetryPolicy p{.max_attempts = 3};
  CHECK_FALSE(retries_exhausted(p, 1));
  CHECK_FALSE(retries_exhausted(p, 2));
  CHECK(retries_exhausted(p, 3));
  CHECK(retries_exhausted(p, 9));
}

TEST_CASE("tier names read as durations", "[topology]") {
  CHECK(topology::retry_tier_name(1000) == "sagaflow.retry.1s");
  CHECK(topology::retry_tier_name(5000) == "sagaflow.retry.5s");
  CHECK(topology::retry_tier_name(120000) == "sagaflow.retry.2m");
  CHECK(topology::retry_tier_name(250) == "sagaflow.retry.250ms");
  CHECK(topology::retry_tier_name(1500) == "sagaflow.retry.1500ms");
}
