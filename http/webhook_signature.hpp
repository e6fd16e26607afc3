#pragma once
// Webhook signatures (CONTRACT.md section 7):
//   X-Sagaflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">[,v1=...]
// Any v1 matching any configured secret is accepted (rotation); comparisons are constant-time;
// a t more than 300 s away from now, in either direction, is refused (replay).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sagaflow::http {

inline constexpr std::int64_t kSignatureToleranceS = 300;

enum class SignatureCheck : std::uint8_t { ok, missing, malformed, stale, mismatch };
std::string_view to_string(SignatureCheck c) noexcept;

SignatureCheck verify_signature(std::string_view header, std::string_view body,
                                std::span<const std::string> secrets, std::int64_t now_s);

// "t=<t>,v1=<hex>" for one secret: used by tests, the benchmark and clients.
std::string sign(std::string_view secret, std::int64_t t, std::string_view body);

}  // namespace sagaflow::http
