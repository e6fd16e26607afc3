// Retry timing of deliveries: SAGAFLOW_DELIVERY_SCHEDULE, 0..20 % jitter, dead after the last
// attempt, and Retry-After (delta-seconds or an HTTP date in RFC 9110's three forms, capped).
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "delivery/schedule.hpp"

using namespace sagaflow;
using namespace sagaflow::delivery;

namespace {
constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;
constexpr Millis kDay = 24 * kHour;
constexpr std::uint64_t kMaxRandom = std::numeric_limits<std::uint64_t>::max();
// Tue, 14 Nov 2023 22:13:20 GMT
constexpr Millis kNow = 1'700'000'000'000;

Schedule schedule_of(std::vector<Millis> delays) {
  return Schedule{std::move(delays)};
}
}  // namespace

TEST_CASE("the contract's default schedule parses entry by entry", "[schedule]") {
  // Given the default schedule text
  auto s = parse_schedule("5s,5m,30m,2h,5h,10h,10h");
  // Then every entry is its delay in ms, and 7 retries make 8 attempts
  REQUIRE(s.ok());
  CHECK(s->delays_ms == std::vector<Millis>{5 * kSecond, 5 * kMinute, 30 * kMinute, 2 * kHour,
                                            5 * kHour, 10 * kHour, 10 * kHour});
  CHECK(s->max_attempts() == 8);
}

TEST_CASE("schedule units ms, s, m, h, d and spaces around entries", "[schedule]") {
  auto s = parse_schedule("  250ms , 2s,3m ,\t4h, 1d  ");
  REQUIRE(s.ok());
  CHECK(s->delays_ms == std::vector<Millis>{250, 2 * kSecond, 3 * kMinute, 4 * kHour, kDay});
}

TEST_CASE("an empty schedule means a single attempt", "[schedule]") {
  for (const char* text : {"", "   "}) {
    auto s = parse_schedule(text);
    REQUIRE(s.ok());
    CHECK(s->delays_ms.empty());
    CHECK(s->max_attempts() == 1);
  }
}

TEST_CASE("the longest accepted entry is one year", "[schedule]") {
  auto year = parse_schedule("365d");
  REQUIRE(year.ok());
  CHECK(year->delays_ms.front() == kMaxScheduleDelayMs);
  CHECK_FALSE(parse_schedule("366d").ok());
  CHECK_FALSE(parse_schedule("31536000001ms").ok());
}

TEST_CASE("a bad schedule is invalid_config with one line naming the entry", "[schedule]") {
  struct Bad {
    const char* text;
    const char* named;  // what the detail must mention
  };
  const std::vector<Bad> bad = {
      {"5s,,5m", "entry 2"},                                         // empty entry
      {"5s,", "entry 2"},                                            // trailing comma
      {",5s", "entry 1"},                                            // leading comma
      {"5", "'5'"},                                                  // no unit
      {"5s,10x", "'10x'"},                                           // unknown unit
      {"5S", "'5S'"},                                                // units are lower case
      {"0s", "'0s'"},                                                // zero
      {"s", "'s'"},                                                  // no number
      {"-5s", "'-5s'"},                                              // sign
      {"1.5s", "'1.5s'"},                                            // fraction
      {"5 s", "'5 s'"},                                              // space inside an entry
      {"366d", "'366d'"},                                            // above the maximum
      {"99999999999999999999999ms", "'99999999999999999999999ms'"},  // beyond 64 bits
  };
  for (const Bad& b : bad) {
    // When parsed
    auto s = parse_schedule(b.text);
    // Then it fails with a one-line detail naming the key and the bad entry
    INFO(b.text);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Errc::invalid_config);
    CHECK(s.error().detail.find("SAGAFLOW_DELIVERY_SCHEDULE") != std::string::npos);
    CHECK(s.error().detail.find(b.named) != std::string::npos);
    CHECK(s.error().detail.find('\n') == std::string::npos);
  }
}

TEST_CASE("jitter is 0..20 % of the scheduled delay, set by the random argument", "[schedule]") {
  const Schedule s = schedule_of({5 * kSecond, 10 * kSecond});
  // Given the smallest and the largest random value: the bounds, both inclusive
  CHECK(next_delay_ms(s, 1, 0) == 5000);
  CHECK(next_delay_ms(s, 1, kMaxRandom) == 6000);
  CHECK(next_delay_ms(s, 2, 0) == 10000);
  CHECK(next_delay_ms(s, 2, kMaxRandom) == 12000);
  // The middle of the random range is the middle of the jitter
  CHECK(next_delay_ms(s, 1, kMaxRandom / 2) == 5500);
  // Deterministic: the same random value gives the same delay
  CHECK(next_delay_ms(s, 2, 0x1234'5678'9abc'def0ULL) ==
        next_delay_ms(s, 2, 0x1234'5678'9abc'def0ULL));

  // Over many random values every delay stays within bounds and the range is covered
  std::mt19937_64 rng(42);
  Millis lowest = std::numeric_limits<Millis>::max();
  Millis highest = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto d = next_delay_ms(s, 1, rng());
    REQUIRE(d.has_value());
    REQUIRE(*d >= 5000);
    REQUIRE(*d <= 6000);
    lowest = std::min(lowest, *d);
    highest = std::max(highest, *d);
  }
  CHECK(lowest < 5050);
  CHECK(highest > 5950);
}

TEST_CASE("a delay too short for 20 % to reach a millisecond gets no jitter", "[schedule]") {
  const Schedule s = schedule_of({4, 10});
  CHECK(next_delay_ms(s, 1, kMaxRandom) == 4);
  CHECK(next_delay_ms(s, 2, kMaxRandom) == 12);
}

TEST_CASE("after the last attempt the delivery is dead", "[schedule]") {
  // Given 2 retries: 3 attempts
  const Schedule s = schedule_of({kSecond, kMinute});
  // Then after attempts 1 and 2 comes a delay, after attempt 3 none
  CHECK(next_delay_ms(s, 1, 0) == kSecond);
  CHECK(next_delay_ms(s, 2, 0) == kMinute);
  CHECK_FALSE(next_delay_ms(s, 3, 0).has_value());
  CHECK_FALSE(next_delay_ms(s, 4, 0).has_value());
  // Attempts below 1 count as 1
  CHECK(next_delay_ms(s, 0, 0) == kSecond);
  CHECK(next_delay_ms(s, -3, 0) == kSecond);
  // No retries at all: dead after the first attempt
  CHECK_FALSE(next_delay_ms(schedule_of({}), 1, 0).has_value());
}

TEST_CASE("Retry-After in delta-seconds", "[schedule][retry-after]") {
  CHECK(parse_retry_after("120", kNow) == 120 * kSecond);
  CHECK(parse_retry_after("  120\t", kNow) == 120 * kSecond);
  CHECK(parse_retry_after("0", kNow) == 0);
  CHECK(parse_retry_after("007", kNow) == 7 * kSecond);
  // Capped at 24 h
  CHECK(parse_retry_after("86399", kNow) == kDay - kSecond);
  CHECK(parse_retry_after("86400", kNow) == kRetryAfterCapMs);
  CHECK(parse_retry_after("86401", kNow) == kRetryAfterCapMs);
  CHECK(parse_retry_after("99999999999999999999999999", kNow) == kRetryAfterCapMs);
}

TEST_CASE("Retry-After as an IMF-fixdate", "[schedule][retry-after]") {
  // Given now = Tue, 14 Nov 2023 22:13:20 GMT
  CHECK(parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", kNow) == 2 * kMinute);
  CHECK(parse_retry_after(" Tue, 14 Nov 2023 22:13:21 GMT ", kNow) == kSecond);
  // Across a leap day: 28 Feb 2024 00:00 -> 29 Feb 2024 00:00
  CHECK(parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", 1'709'164'800'000 - kDay) == kDay);
}

TEST_CASE("Retry-After as an RFC 850 date, two-digit years", "[schedule][retry-after]") {
  CHECK(parse_retry_after("Tuesday, 14-Nov-23 22:15:20 GMT", kNow) == 2 * kMinute);
  // At 1994-11-06 07:49:37, "94" is 1994 (one hour ahead), not 2094
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 784'111'777'000 - kHour) == kHour);
  // In 2023, "73" is 2073 (exactly 50 years ahead: future, capped) ...
  CHECK(parse_retry_after("Sunday, 01-Jan-73 00:00:00 GMT", kNow) == kRetryAfterCapMs);
  // ... and "74" would be more than 50 years ahead, so it is 1974: in the past
  CHECK(parse_retry_after("Tuesday, 01-Jan-74 00:00:00 GMT", kNow) == 0);
  // Just before 2073 begins, "73" is an hour ahead
  CHECK(parse_retry_after("Sunday, 01-Jan-73 00:00:00 GMT", 3'250'454'400'000 - kHour) == kHour);
}

TEST_CASE("Retry-After as an asctime date", "[schedule][retry-after]") {
  CHECK(parse_retry_after("Tue Nov 14 22:15:20 2023", kNow) == 2 * kMinute);
  // A one-digit day is padded with a space
  CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", 784'111'777'000 - kMinute) == kMinute);
}

TEST_CASE("a Retry-After date in the past is 0, one far ahead is capped",
          "[schedule][retry-after]") {
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kNow) == 0);
  CHECK(parse_retry_after("Tue, 14 Nov 2023 22:13:20 GMT", kNow) == 0);  // now itself
  CHECK(parse_retry_after("Wed, 15 Nov 2023 22:13:20 GMT", kNow) == kDay);
  CHECK(parse_retry_after("Wed, 15 Nov 2023 22:13:21 GMT", kNow) == kRetryAfterCapMs);
  CHECK(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", kNow) == kRetryAfterCapMs);
}

TEST_CASE("a Retry-After that is no valid form is nullopt", "[schedule][retry-after]") {
  for (const char* value : {
           "",
           "   ",
           "soon",
           "-5",
           "+5",
           "1.5",
           "12a",
           "12 34",
           "Tue, 14 Nov 2023 22:15:20 UTC",  // not GMT
           "tue, 14 Nov 2023 22:15:20 GMT",  // names are case-sensitive
           "Tue, 14 nov 2023 22:15:20 GMT",
           "Tue, 14 Nov 23 22:15:20 GMT",         // two-digit year in an IMF-fixdate
           "Tue, 4 Nov 2023 22:15:20 GMT",        // one-digit day
           "Tue, 31 Nov 2023 22:15:20 GMT",       // no 31 November
           "Thu, 29 Feb 2023 00:00:00 GMT",       // 2023 is no leap year
           "Tue, 14 Nov 2023 24:00:00 GMT",       // hour 24
           "Tue, 14 Nov 2023 22:60:00 GMT",       // minute 60
           "Tue, 14 Nov 2023 22:15:20 GMT junk",  // trailing text
           "Tue,14 Nov 2023 22:15:20 GMT",        // missing space
           "Tues, 14 Nov 2023 22:15:20 GMT",      // unknown day name
           "Tue, 14-Nov-23 22:15:20 GMT",         // RFC 850 needs the long day name
           "Tue Nov 6 08:49:37 1994",             // asctime's day needs two characters
           "Tue Nov 14 22:15:20 GMT 2023",
       }) {
    INFO(value);
    CHECK_FALSE(parse_retry_after(value, kNow).has_value());
  }
}
