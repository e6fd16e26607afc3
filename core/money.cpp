#include "core/money.hpp"

#include <fmt/format.h>

namespace sagaflow {

Result<Money> Money::parse(std::string_view text, bool quoted) {
  auto fail = [&](std::string_view why) {
    return make_error(
        Errc::invalid_event,
        fmt::format(
            "{} (money is a non-negative decimal with at most 2 fraction digits, got {}{}{})", why,
            quoted ? "\"" : "", text.substr(0, 40), quoted ? "\"" : ""));
  };
  if (text.empty()) return fail("empty");
  std::size_t i = 0;
  std::int64_t units = 0;
  int int_digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (int_digits == kMaxIntegerDigits) return fail("too large");
    units = units * 10 + (text[i] - '0');
    ++int_digits;
    ++i;
  }
  if (int_digits == 0) return fail(text[0] == '-' ? "negative" : "not a number");
  if (int_digits > 1 && text[0] == '0') return fail("leading zero");
  int frac_digits = 0;
  std::int64_t frac = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (frac_digits == kMaxFractionDigits) return fail("more than 2 fraction digits");
      frac = frac * 10 + (text[i] - '0');
      ++frac_digits;
      ++i;
    }
    if (frac_digits == 0) return fail("no digit after the decimal point");
  }
  if (i != text.size()) {
    const char c = text[i];
    return fail(c == 'e' || c == 'E' ? "exponent" : "not a number");
  }
  Money m;
  m.minor_ = units * 100 + (frac_digits == 1 ? frac * 10 : frac);
  m.fraction_digits_ = static_cast<std::uint8_t>(frac_digits);
  m.quoted_ = quoted;
  return m;
}

Money Money::from_minor_units(std::int64_t minor_units) {
  Money m;
  m.minor_ = minor_units;
  m.fraction_digits_ = 2;
  return m;
}

std::string Money::to_string() const {
  const std::int64_t units = minor_ / 100;
  const std::int64_t cents = minor_ % 100;
  switch (fraction_digits_) {
    case 0:
      return fmt::format("{}", units);
    case 1:
      return fmt::format("{}.{}", units, cents / 10);
    default:
      return fmt::format("{}.{:02}", units, cents);
  }
}

void Money::append_json(std::string& out) const {
  if (quoted_) out.push_back('"');
  out.append(to_string());
  if (quoted_) out.push_back('"');
}

}  // namespace sagaflow
