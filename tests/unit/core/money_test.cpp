// Exact money: parsed from the text as written, carried out byte for byte, never a double.
#include <catch2/catch.hpp>

#include <string>

#include "core/money.hpp"

using sagaflow::Errc;
using sagaflow::Money;

TEST_CASE("valid amounts keep their value and their written form", "[money]") {
  struct Case {
    const char* text;
    bool quoted;
    std::int64_t minor;
    const char* json;
  };
  const Case cases[] = {
      {"99.99", false, 9999, "99.99"},
      {"99.99", true, 9999, "\"99.99\""},
      {"0", false, 0, "0"},
      {"0.5", true, 50, "\"0.5\""},
      {"100", false, 10000, "100"},
      {"1234567890123.45", false, 123456789012345, "1234567890123.45"},
      {"0.01", false, 1, "0.01"},
      {"10.10", false, 1010, "10.10"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text, c.quoted);
    auto m = Money::parse(c.text, c.quoted);
    REQUIRE(m.ok());
    CHECK(m->minor_units() == c.minor);
    std::string out;
    m->append_json(out);
    CHECK(out == c.json);
  }
}

TEST_CASE("invalid amounts say why", "[money]") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"9.999", "more than 2 fraction digits"},
      {"-1", "negative"},
      {"1e2", "exponent"},
      {"1E2", "exponent"},
      {"01", "leading zero"},
      {"", "empty"},
      {"abc", "not a number"},
      {"1.", "no digit after"},
      {"12345678901234", "too large"},
      {"1 ", "not a number"},
      {"+1", "not a number"},
      {".5", "not a number"},
      {"NaN", "not a number"},
      {"1.2.3", "not a number"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto m = Money::parse(c.text, true);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == Errc::invalid_event);
    CHECK_THAT(m.error().detail, Catch::Contains(c.why));
  }
}
