#pragma once
// Webhook endpoints as data (CONTRACT.md section 9): what `sagaflow endpoints` manages and what
// `sagaflow deliver` matches events against. Pure: no Redis, no network.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace sagaflow::delivery {

enum class EndpointState : std::uint8_t { enabled, disabled, disabled_gone };
std::string_view to_string(EndpointState s) noexcept;  // "enabled", "disabled", "disabled:gone"
std::optional<EndpointState> endpoint_state_from(std::string_view text) noexcept;

struct Secret {
  std::string value;     // "whsec_<base64>" (or the plain text the user gave)
  Millis created_ms = 0;
};

struct Endpoint {
  std::string id;                   // "ep_" + letters and digits
  std::string url;                  // http:// or https://
  std::vector<std::string> events;  // patterns: exact type, "prefix.*" or "*"
  std::string store_id;             // empty: every store (and events without store_id)
  std::string plan;                 // empty: no rate limit
  EndpointState state = EndpointState::enabled;
  std::vector<Secret> secrets;      // oldest first
  Millis created_ms = 0;
};

// One JSON object with every field (secrets included): how an endpoint is stored in Redis.
// endpoint_from_json: text that is not JSON is Errc::malformed_json; a missing id, url or
// events, a field of the wrong type or an unknown state is Errc::invalid_config. Unknown fields
// are ignored, null store_id / plan read as empty.
std::string to_json(const Endpoint& e);
Result<Endpoint> endpoint_from_json(std::string_view json);

// A pattern is an exact type ("order.created"), a prefix ("order.*": every type starting with
// "order."), or "*". Anything else with a '*', an empty pattern, or one with spaces or control
// characters (or not valid UTF-8) is Errc::usage with a one-line detail.
Status check_pattern(std::string_view pattern);
// "order.created,payment.*" -> patterns (trimmed, each checked, at least one).
Result<std::vector<std::string>> parse_patterns(std::string_view list);
bool pattern_matches(std::string_view pattern, std::string_view type) noexcept;

// An event goes to an enabled endpoint when a pattern matches its type and the endpoint has no
// store filter or the event's store_id equals it (an event without store_id matches only
// endpoints without a store filter). False for an endpoint that is not enabled.
bool endpoint_wants(const Endpoint& e, std::string_view type, std::string_view store_id) noexcept;

// The URL's parts, or Errc::usage ("the URL must be http:// or https://: ftp://x"). Refused:
// another scheme, userinfo (user@), spaces or control characters, invalid UTF-8, an empty
// host, a host with characters other than letters, digits, '-', '.', '_' or non-ASCII, a
// bracketed host that is not an IPv6 address, an empty port or one outside 1-65535. The
// scheme is lower-cased; the host is kept as written.
struct Url {
  std::string scheme;  // "http" / "https"
  std::string host;    // without brackets
  int port = 0;        // 0: the scheme's default
};
Result<Url> parse_url(std::string_view url);

// Secrets whose age is under 24 h after a newer one was added sign too: the ones that sign at
// `now` (the newest always; an older one while the next newer is less than `overlap_ms` old),
// oldest first like Endpoint::secrets.
std::vector<std::string> signing_secrets(const Endpoint& e, Millis now,
                                         Millis overlap_ms = 24LL * 3600 * 1000);

// New ids and secrets from a CSPRNG (OpenSSL RAND_bytes): "ep_" + 16 base-36 characters, and
// "whsec_" + base64 of 24 random bytes.
std::string new_endpoint_id();
std::string new_secret();

}  // namespace sagaflow::delivery
