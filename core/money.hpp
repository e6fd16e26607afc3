#pragma once
// Exact decimal money (CONTRACT.md section 2). Held as integer minor units (cents) plus the
// way it was written (number or string, how many fraction digits), so that it is carried into
// commands without any change of value or form: 99.99 stays 99.99, "99.9" stays "99.9".
// Binary floating point never holds money.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace sagaflow {

class Money {
 public:
  // Largest accepted magnitude: 13 integer digits (under 10^13 major units).
  static constexpr int kMaxIntegerDigits = 13;
  static constexpr int kMaxFractionDigits = 2;

  Money() = default;

  // Parses the text of a JSON number (quoted = false) or the content of a JSON string
  // (quoted = true). Accepts [0-9]+(.[0-9]{1,2})?, no sign, no exponent, no leading zeros
  // (but "0.5"), no spaces. Errors are invalid_event with a detail saying why.
  static Result<Money> parse(std::string_view text, bool quoted);
  static Money from_minor_units(std::int64_t minor_units);  // written as a number, 2 digits

  std::int64_t minor_units() const noexcept { return minor_; }
  // Decimal text without quotes, exactly as written ("99.99", "100", "0.5").
  std::string to_string() const;
  // Appends the JSON value exactly as received: a number, or a quoted string.
  void append_json(std::string& out) const;

  friend bool operator==(const Money& a, const Money& b) noexcept { return a.minor_ == b.minor_; }

 private:
  std::int64_t minor_ = 0;            // value in hundredths
  std::uint8_t fraction_digits_ = 0;  // 0, 1 or 2 as written
  bool quoted_ = false;
};

}  // namespace sagaflow
