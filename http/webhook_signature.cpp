#include "http/webhook_signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>

namespace sagaflow::http {
namespace {

using Digest = std::array<unsigned char, 32>;

// HMAC-SHA256 over "<t>.<body>" with OpenSSL 3's EVP_MAC API (the HMAC_* calls are deprecated).
bool hmac_sha256(std::string_view key, std::string_view t, std::string_view body, Digest& out) {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  if (ctx == nullptr) return false;
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0),
                               OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  const bool ok =
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) ==
          1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(t.data()), t.size()) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>("."), 1) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1 &&
      EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
  EVP_MAC_CTX_free(ctx);
  return ok;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_hex(std::string_view hex, Digest& out) {
  if (hex.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view to_string(SignatureCheck c) noexcept {
  switch (c) {
    case SignatureCheck::ok:
      return "ok";
    case SignatureCheck::missing:
      return "missing signature";
    case SignatureCheck::malformed:
      return "malformed signature header";
    case SignatureCheck::stale:
      return "signature timestamp outside the 300 s window";
    case SignatureCheck::mismatch:
      return "no signature matches";
  }
  return "invalid";
}

SignatureCheck verify_signature(std::string_view header, std::string_view body,
                                std::span<const std::string> secrets, std::int64_t now_s) {
  header = trim(header);
  if (header.empty()) return SignatureCheck::missing;
  std::string_view t_text;
  constexpr std::size_t kMaxSignatures = 8;
  std::array<Digest, kMaxSignatures> candidates{};
  std::size_t n = 0;
  while (!header.empty()) {
    const auto comma = header.find(',');
    const std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return SignatureCheck::malformed;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      if (!t_text.empty()) return SignatureCheck::malformed;
      t_text = value;
    } else if (key == "v1") {
      if (n == kMaxSignatures || !decode_hex(value, candidates[n]))
        return SignatureCheck::malformed;
      ++n;
    }  // other schemes (v0, ...) are ignored, as in Stripe-style headers
  }
  std::int64_t t = 0;
  const auto [ptr, ec] = std::from_chars(t_text.data(), t_text.data() + t_text.size(), t);
  if (t_text.empty() || ec != std::errc{} || ptr != t_text.data() + t_text.size() || n == 0) {
    return SignatureCheck::malformed;
  }
  if (t > now_s + kSignatureToleranceS || t < now_s - kSignatureToleranceS)
    return SignatureCheck::stale;
  bool matched = false;
  for (const auto& secret : secrets) {
    Digest expected{};
    if (!hmac_sha256(secret, t_text, body, expected)) continue;
    for (std::size_t i = 0; i < n; ++i) {
      // Every candidate is compared, in constant time, whatever matched before.
      matched |= CRYPTO_memcmp(expected.data(), candidates[i].data(), expected.size()) == 0;
    }
  }
  return matched ? SignatureCheck::ok : SignatureCheck::mismatch;
}

std::string sign(std::string_view secret, std::int64_t t, std::string_view body) {
  const std::string t_text = std::to_string(t);
  Digest d{};
  hmac_sha256(secret, t_text, body, d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "t=" + t_text + ",v1=";
  for (unsigned char b : d) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace sagaflow::http
