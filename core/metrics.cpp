#include "core/metrics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace sagaflow::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double v) noexcept {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  ++buckets_[static_cast<std::size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += v;
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Kind kind) {
  for (auto& f : families_) {
    if (f.name == name) return f;
  }
  families_.push_back(Family{std::string(name), std::string(help), kind, {}});
  return families_.back();
}

Registry::Series& Registry::series(Family& f, std::string_view labels) {
  for (auto& s : f.series) {
    if (s.labels == labels) return s;
  }
  f.series.push_back(Series{std::string(labels), {}, {}, nullptr});
  return f.series.back();
}

Counter& Registry::counter(std::string_view name, std::string_view help, std::string_view labels) {
  return series(family(name, help, Kind::counter), labels).counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, std::string_view labels) {
  return series(family(name, help, Kind::gauge), labels).gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> bounds) {
  auto& s = series(family(name, help, Kind::histogram), {});
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

std::string Registry::render() const {
  std::string out;
  out.reserve(4096);
  auto braces = [](const std::string& labels) {
    return labels.empty() ? std::string() : "{" + labels + "}";
  };
  for (const auto& f : families_) {
    const char* type = f.kind == Kind::counter ? "counter"
                       : f.kind == Kind::gauge ? "gauge"
                                               : "histogram";
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name,
                   type);
    for (const auto& s : f.series) {
      if (f.kind == Kind::counter) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", f.name, braces(s.labels),
                       s.counter.value());
      } else if (f.kind == Kind::gauge) {
        fmt::format_to(std::back_inserter(out), "{}{} {}\n", f.name, braces(s.labels),
                       s.gauge.value());
      } else if (s.histogram) {
        const auto& h = *s.histogram;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.bounds().size(); ++i) {
          cumulative += h.buckets()[i];
          fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", f.name,
                         h.bounds()[i], cumulative);
        }
        fmt::format_to(std::back_inserter(out),
                       "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", f.name, h.count(),
                       f.name, h.sum(), f.name, h.count());
      }
    }
  }
  return out;
}

}  // namespace sagaflow::metrics
