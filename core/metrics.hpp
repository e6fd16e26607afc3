#pragma once
// Prometheus metrics (text format 0.0.4). Handles are created once at start-up and are stable,
// so the hot path increments a double without any lookup. One registry per process, used from
// the event-loop thread only.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sagaflow::metrics {

class Counter {
 public:
  void inc(double v = 1) noexcept { value_ += v; }
  double value() const noexcept { return value_; }

 private:
  double value_ = 0;
};

class Gauge {
 public:
  void set(double v) noexcept { value_ = v; }
  void add(double v) noexcept { value_ += v; }
  double value() const noexcept { return value_; }

 private:
  double value_ = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  const std::vector<std::uint64_t>& buckets() const noexcept { return buckets_; }  // not cumulative

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> buckets_;  // one per bound, plus +Inf
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

class Registry {
 public:
  // labels: the inside of {...}, e.g. R"(type="order.created")", or empty.
  Counter& counter(std::string_view name, std::string_view help, std::string_view labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, std::string_view labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds);

  // The whole registry in Prometheus text format.
  std::string render() const;

 private:
  enum class Kind : std::uint8_t { counter, gauge, histogram };
  struct Series {
    std::string labels;
    Counter counter;
    Gauge gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name;
    std::string help;
    Kind kind;
    std::deque<Series> series;  // deque: references stay valid as series are added
  };
  Family& family(std::string_view name, std::string_view help, Kind kind);
  Series& series(Family& f, std::string_view labels);

  std::deque<Family> families_;
};

}  // namespace sagaflow::metrics
