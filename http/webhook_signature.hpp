#pragma once
// Webhook signatures (CONTRACT.md sections 7 and 9): one signer and verifier for both schemes,
// used by the ingress to verify and by outgoing deliveries to sign.
//
//   sagaflow:  X-Sagaflow-Signature: t=<unix s>,v1=<hex HMAC-SHA256("<t>.<body>")>[,v1=...]
//   Standard Webhooks (standardwebhooks.com, v1):
//              webhook-id: <id>   webhook-timestamp: <unix s>
//              webhook-signature: v1,<base64 HMAC-SHA256("<id>.<t>.<body>")>[ v1,...]
//
// A secret written `whsec_<base64>` is the decoded key (for both schemes); any other secret is
// used as its bytes. Any entry matching any secret is accepted (rotation); an entry that is
// malformed or of another version is skipped, never a reason to refuse the others. Every
// comparison is constant-time, and every entry is compared whatever matched before. A
// timestamp more than 300 s away from now, in either direction, is refused (replay).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sagaflow::http {

inline constexpr std::int64_t kSignatureToleranceS = 300;

enum class SignatureCheck : std::uint8_t { ok, missing, malformed, stale, mismatch };
std::string_view to_string(SignatureCheck c) noexcept;

// The HMAC key of a configured secret; nullopt for a `whsec_` secret that is not base64.
std::optional<std::string> secret_key(std::string_view secret);

SignatureCheck verify_signature(std::string_view header, std::string_view body,
                                std::span<const std::string> secrets, std::int64_t now_s);

SignatureCheck verify_standard(std::string_view webhook_id, std::string_view webhook_timestamp,
                               std::string_view webhook_signature, std::string_view body,
                               std::span<const std::string> secrets, std::int64_t now_s);

// "t=<t>,v1=<hex>" for one secret.
std::string sign(std::string_view secret, std::int64_t t, std::string_view body);
// "t=<t>,v1=<hex>,v1=<hex>...": one entry per secret.
std::string sign(std::span<const std::string> secrets, std::int64_t t, std::string_view body);
// The webhook-signature value "v1,<base64> v1,<base64>...": one entry per secret.
std::string sign_standard(std::span<const std::string> secrets, std::string_view webhook_id,
                          std::int64_t t, std::string_view body);

}  // namespace sagaflow::http
