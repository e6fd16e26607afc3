#pragma once
// Retry timing of outgoing deliveries (CONTRACT.md section 9), as pure functions.
//
// SAGAFLOW_DELIVERY_SCHEDULE lists the delays before attempts 2, 3, ...: the first attempt is
// immediate, so a schedule of n entries allows 1 + n attempts. A failed attempt is retried
// after its scheduled delay plus 0..20 % jitter; a 429 or 503 that carries Retry-After waits
// at least that long instead (the caller takes the later of the two), capped at 24 h.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace sagaflow::delivery {

struct Schedule {
  std::vector<Millis> delays_ms;  // delays before attempts 2, 3, ...
  int max_attempts() const noexcept { return static_cast<int>(delays_ms.size()) + 1; }
};

// The longest single schedule entry accepted (guards the jitter and `now + delay` arithmetic).
inline constexpr Millis kMaxScheduleDelayMs = 365LL * 24 * 3600 * 1000;

// "5s,5m,30m,2h,5h,10h,10h": comma-separated entries, each a positive integer directly followed
// by its unit ms|s|m|h|d; spaces around entries are allowed. The empty (or all-space) string is
// no retries (1 attempt). Bad input (empty entry, missing or unknown unit, zero, an entry above
// kMaxScheduleDelayMs) is Errc::invalid_config with a one-line detail naming the bad entry,
// prefixed "SAGAFLOW_DELIVERY_SCHEDULE: ".
Result<Schedule> parse_schedule(std::string_view text);

// The delay before the next attempt once `attempts_made` attempts (1-based: attempts already
// made, all failed) are done; nullopt when attempts_made >= max_attempts() (the delivery is
// dead). The scheduled delay gets jitter of 0..20 % of it (inclusive), taken from `random`, a
// uniform 64-bit value supplied by the caller so that tests are deterministic. attempts_made
// below 1 is treated as 1.
std::optional<Millis> next_delay_ms(const Schedule& s, int attempts_made,
                                    std::uint64_t random) noexcept;

inline constexpr Millis kRetryAfterCapMs = 24LL * 3600 * 1000;

// A Retry-After header value (RFC 9110 section 10.2.3): delta-seconds ("120") or an HTTP date,
// as IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT";
// a two-digit year more than 50 years in the future means the previous century) or asctime
// ("Sun Nov  6 08:49:37 1994"). Surrounding spaces are ignored; month and day names are
// matched case-sensitively by hand (no locale). Returns the delay from now_ms in ms, clamped
// to [0, kRetryAfterCapMs] (a date in the past is 0); nullopt when the value is empty or not
// one of those forms.
std::optional<Millis> parse_retry_after(std::string_view value, Millis now_ms) noexcept;

}  // namespace sagaflow::delivery
