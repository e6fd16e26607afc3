// Proves: the GCRA parameters of the default plans, and that the bound they imply never
// exceeds the contract's "burst + rate x window" (emission interval rounded up).
#include <catch2/catch.hpp>

#include "store/gcra.hpp"

using namespace sagaflow;
using namespace sagaflow::store;

TEST_CASE("GCRA parameters of the default plans", "[store][gcra]") {
  const RatePlan free{"free", 60, 60000, 100};
  const RatePlan pro{"pro", 300, 60000, 500};
  const RatePlan enterprise{"enterprise", 1000, 60000, 2000};
  CHECK(gcra_params(free).emission_us == 1'000'000);
  CHECK(gcra_params(free).tolerance_us == 99 * 1'000'000LL);
  CHECK(gcra_params(pro).emission_us == 200'000);
  CHECK(gcra_params(pro).tolerance_us == 499 * 200'000LL);
  CHECK(gcra_params(enterprise).emission_us == 60'000);
  CHECK(gcra_params(enterprise).tolerance_us == 1999 * 60'000LL);
}

TEST_CASE("a burst is admitted at once, then one per emission interval", "[store][gcra]") {
  const GcraParams g = gcra_params(RatePlan{"p", 10, 1000, 5});
  CHECK(gcra_max_admitted(g, 0) == 5);
  CHECK(gcra_max_admitted(g, 99'999) == 5);
  CHECK(gcra_max_admitted(g, 100'000) == 6);
  CHECK(gcra_max_admitted(g, 1'000'000) == 15);
}

TEST_CASE("the GCRA bound never exceeds burst + rate x window", "[store][gcra]") {
  // Awkward rates (period not a multiple of rate) are rounded toward stricter.
  for (std::int64_t rate : {1, 3, 7, 60, 300, 999, 1000, 7919}) {
    for (std::int64_t burst : {1, 2, 100, 2000}) {
      const RatePlan plan{"p", rate, 60000, burst};
      const GcraParams g = gcra_params(plan);
      for (std::int64_t window_us : {0LL, 1LL, 999'999LL, 60'000'000LL, 3'600'000'000LL}) {
        const long double bound = static_cast<long double>(burst) +
                                  static_cast<long double>(rate) * window_us / (60000 * 1000.0L);
        INFO("rate " << rate << " burst " << burst << " window_us " << window_us);
        CHECK(static_cast<long double>(gcra_max_admitted(g, window_us)) <= bound);
      }
    }
  }
}

TEST_CASE("nonsense plans are clamped to strict ones", "[store][gcra]") {
  const GcraParams g = gcra_params(RatePlan{"bad", 0, 0, 0});
  CHECK(g.emission_us == 1'000'000);
  CHECK(g.tolerance_us == 0);
  CHECK(gcra_max_admitted(g, 0) == 1);
}
