// Prometheus text rendering: counters by label, cumulative histogram buckets.
#include <catch2/catch.hpp>

#include "core/metrics.hpp"

using namespace sagaflow::metrics;

TEST_CASE("registry renders counters, gauges and histograms", "[metrics]") {
  Registry r;
  r.counter("x_total", "Xs", R"(type="a")").inc();
  r.counter("x_total", "Xs", R"(type="a")").inc(2);
  r.counter("x_total", "Xs", R"(type="b")").inc();
  r.gauge("g", "G").set(5);
  auto& h = r.histogram("lat_seconds", "L", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(7);
  const std::string text = r.render();
  CHECK_THAT(text, Catch::Contains("# TYPE x_total counter\n"));
  CHECK_THAT(text, Catch::Contains("x_total{type=\"a\"} 3\n"));
  CHECK_THAT(text, Catch::Contains("x_total{type=\"b\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("g 5\n"));
  CHECK_THAT(text, Catch::Contains("lat_seconds_bucket{le=\"0.1\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("lat_seconds_bucket{le=\"1\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("lat_seconds_bucket{le=\"+Inf\"} 3\n"));
  CHECK_THAT(text, Catch::Contains("lat_seconds_count 3\n"));
}
