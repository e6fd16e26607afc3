#include "consumers/retry_policy.hpp"

#include <algorithm>

namespace sagaflow {

RetryPlan plan_retry(const RetryPolicy& p, int attempt, double unit_random) noexcept {
  const int shift = std::clamp(attempt - 1, 0, 40);
  std::int64_t d = p.base_ms;
  for (int i = 0; i < shift && d < p.cap_ms; ++i) d *= 2;
  d = std::clamp<std::int64_t>(d, 1, std::max<std::int64_t>(1, p.cap_ms));
  const double u = std::clamp(unit_random, 0.0, 1.0);
  std::int64_t delay = d / 2 + static_cast<std::int64_t>(static_cast<double>(d - d / 2) * u);
  delay = std::max<std::int64_t>(1, delay);

  RetryPlan plan;
  if (p.tiers_ms.empty()) {
    plan.delay_ms = delay;
    plan.tier_ms = delay;
    return plan;
  }
  std::vector<std::int64_t> tiers = p.tiers_ms;
  std::sort(tiers.begin(), tiers.end());
  const auto it = std::lower_bound(tiers.begin(), tiers.end(), delay);
  if (it == tiers.end()) {
    plan.tier_ms = tiers.back();
    plan.delay_ms = tiers.back();
  } else {
    plan.tier_ms = *it;
    plan.delay_ms = delay;
  }
  return plan;
}

}  // namespace sagaflow
