// Retry timing of outgoing deliveries (CONTRACT.md section 9).
#include "delivery/schedule.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "core/civil_date.hpp"

namespace sagaflow::delivery {

namespace {

constexpr std::string_view kScheduleKey = "SAGAFLOW_DELIVERY_SCHEDULE";

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

Error bad_entry(std::string_view entry, std::string_view why) {
  return make_error(Errc::invalid_config,
                    fmt::format("{}: entry '{}' {}", kScheduleKey, entry, why));
}

// One entry, already trimmed and non-empty: "<positive integer><ms|s|m|h|d>".
Result<Millis> parse_entry(std::string_view entry) {
  std::size_t digits = 0;
  while (digits < entry.size() && is_digit(entry[digits])) ++digits;
  if (digits == 0)
    return bad_entry(entry, "must be a positive integer followed by ms, s, m, h or d");
  const std::string_view unit = entry.substr(digits);
  Millis per_unit = 0;
  if (unit == "ms") {
    per_unit = 1;
  } else if (unit == "s") {
    per_unit = 1000;
  } else if (unit == "m") {
    per_unit = 60 * 1000;
  } else if (unit == "h") {
    per_unit = 3600 * 1000;
  } else if (unit == "d") {
    per_unit = 24LL * 3600 * 1000;
  } else if (unit.empty()) {
    return bad_entry(entry, "has no unit (ms, s, m, h or d)");
  } else {
    return bad_entry(entry, "has an unknown unit (ms, s, m, h or d)");
  }
  std::uint64_t n = 0;
  const auto [ptr, ec] = std::from_chars(entry.data(), entry.data() + digits, n);
  const auto too_long = [&] {
    return bad_entry(entry, fmt::format("is longer than {} ms", kMaxScheduleDelayMs));
  };
  if (ec == std::errc::result_out_of_range) return too_long();
  if (ec != std::errc{} || ptr != entry.data() + digits) return bad_entry(entry, "is not a number");
  if (n == 0) return bad_entry(entry, "must be positive");
  if (n > static_cast<std::uint64_t>(kMaxScheduleDelayMs / per_unit)) return too_long();
  return static_cast<Millis>(n) * per_unit;
}

// Retry-After dates ---------------------------------------------------------------------------

constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};


constexpr bool is_leap(std::int64_t y) noexcept {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr std::array<unsigned, 12> kDaysIn = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDaysIn[m - 1];
}

// A cursor over the value: each step consumes an exact token or fails.
class Scanner {
 public:
  explicit Scanner(std::string_view s) noexcept : s_(s) {}
  bool done() const noexcept { return s_.empty(); }
  bool lit(std::string_view token) noexcept {
    if (!s_.starts_with(token)) return false;
    s_.remove_prefix(token.size());
    return true;
  }
  // Exactly `n` digits.
  bool digits(std::size_t n, int& out) noexcept {
    if (s_.size() < n) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!is_digit(s_[i])) return false;
      v = v * 10 + (s_[i] - '0');
    }
    out = v;
    s_.remove_prefix(n);
    return true;
  }
  template <std::size_t N>
  bool name(const std::array<std::string_view, N>& names, int* index = nullptr) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (lit(names[i])) {
        if (index != nullptr) *index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  // "HH:MM:SS"
  bool time(int& h, int& m, int& sec) noexcept {
    return digits(2, h) && lit(":") && digits(2, m) && lit(":") && digits(2, sec);
  }

 private:
  std::string_view s_;
};

struct DateTime {
  std::int64_t year = 0;
  int month = 0;  // 1..12
  int day = 0, hour = 0, minute = 0, second = 0;
};

std::optional<Millis> to_epoch_ms(const DateTime& t) noexcept {
  if (t.month < 1 || t.month > 12 || t.day < 1 ||
      t.day > static_cast<int>(days_in_month(t.year, static_cast<unsigned>(t.month))) ||
      t.hour > 23 || t.minute > 59 || t.second > 60) {  // 60: a leap second
    return std::nullopt;
  }
  const std::int64_t days =
      days_from_civil(t.year, static_cast<unsigned>(t.month), static_cast<unsigned>(t.day));
  return ((days * 24 + t.hour) * 60 + t.minute) * 60 * 1000 + Millis{t.second} * 1000;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<DateTime> imf_fixdate(std::string_view v) noexcept {
  Scanner s(v);
  DateTime t;
  int year = 0;
  if (!(s.name(kDays) && s.lit(", ") && s.digits(2, t.day) && s.lit(" ") &&
        s.name(kMonths, &t.month) && s.lit(" ") && s.digits(4, year) && s.lit(" ") &&
        s.time(t.hour, t.minute, t.second) && s.lit(" GMT") && s.done())) {
    return std::nullopt;
  }
  t.month += 1;
  t.year = year;
  return t;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"; the century is chosen from `now_year`.
std::optional<DateTime> rfc850_date(std::string_view v, std::int64_t now_year) noexcept {
  Scanner s(v);
  DateTime t;
  int yy = 0;
  if (!(s.name(kLongDays) && s.lit(", ") && s.digits(2, t.day) && s.lit("-") &&
        s.name(kMonths, &t.month) && s.lit("-") && s.digits(2, yy) && s.lit(" ") &&
        s.time(t.hour, t.minute, t.second) && s.lit(" GMT") && s.done())) {
    return std::nullopt;
  }
  t.month += 1;
  // RFC 9110 section 5.6.7: a two-digit year more than 50 years in the future is the most
  // recent past year with the same last two digits.
  t.year = now_year - now_year % 100 + yy;
  if (t.year > now_year + 50) t.year -= 100;
  return t;
}

// "Sun Nov  6 08:49:37 1994" (the day is two digits or a space and one digit)
std::optional<DateTime> asctime_date(std::string_view v) noexcept {
  Scanner s(v);
  DateTime t;
  int year = 0;
  if (!(s.name(kDays) && s.lit(" ") && s.name(kMonths, &t.month) && s.lit(" "))) {
    return std::nullopt;
  }
  if (!(s.lit(" ") ? s.digits(1, t.day) : s.digits(2, t.day))) return std::nullopt;
  if (!(s.lit(" ") && s.time(t.hour, t.minute, t.second) && s.lit(" ") && s.digits(4, year) &&
        s.done())) {
    return std::nullopt;
  }
  t.month += 1;
  t.year = year;
  return t;
}

Millis floor_div(Millis a, Millis b) noexcept {
  return a / b - (a % b < 0 ? 1 : 0);
}

}  // namespace

Result<Schedule> parse_schedule(std::string_view text) {
  Schedule s;
  if (trim(text).empty()) return s;
  std::size_t index = 1;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view entry = trim(text.substr(0, comma));
    if (entry.empty()) {
      return make_error(Errc::invalid_config,
                        fmt::format("{}: entry {} is empty", kScheduleKey, index));
    }
    auto delay = parse_entry(entry);
    if (!delay) return std::move(delay).error();
    s.delays_ms.push_back(*delay);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    ++index;
  }
  return s;
}

std::optional<Millis> next_delay_ms(const Schedule& s, int attempts_made,
                                    std::uint64_t random) noexcept {
  if (attempts_made < 1) attempts_made = 1;
  if (attempts_made >= s.max_attempts()) return std::nullopt;
  const Millis base = s.delays_ms[static_cast<std::size_t>(attempts_made - 1)];
  if (base <= 0) return Millis{0};
  // Jitter in [0, base / 5], spread evenly over `random`: 0 gives none, the largest value the
  // most. (random * (max + 1)) >> 64 needs 128 bits.
  __extension__ using U128 = unsigned __int128;
  const auto max_jitter = static_cast<std::uint64_t>(base / 5);
  const auto jitter = static_cast<std::uint64_t>((U128{random} * (max_jitter + 1)) >> 64);
  return base + static_cast<Millis>(jitter);
}

std::optional<Millis> parse_retry_after(std::string_view value, Millis now_ms) noexcept {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (is_digit(value.front())) {
    // delta-seconds: digits only; any number of them (a huge one is simply capped).
    Millis seconds = 0;
    for (char c : value) {
      if (!is_digit(c)) return std::nullopt;
      if (seconds <= kRetryAfterCapMs / 1000) seconds = seconds * 10 + (c - '0');
    }
    return seconds >= kRetryAfterCapMs / 1000 ? kRetryAfterCapMs : seconds * 1000;
  }
  const std::int64_t now_year = civil_from_days(floor_div(now_ms, 24LL * 3600 * 1000)).year;
  std::optional<DateTime> date = imf_fixdate(value);
  if (!date) date = rfc850_date(value, now_year);
  if (!date) date = asctime_date(value);
  if (!date) return std::nullopt;
  const std::optional<Millis> at = to_epoch_ms(*date);
  if (!at) return std::nullopt;
  if (*at <= now_ms) return Millis{0};
  if (now_ms < *at - kRetryAfterCapMs) return kRetryAfterCapMs;  // (no overflow either way)
  return *at - now_ms;
}

}  // namespace sagaflow::delivery
