#include "http/webhook_signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <initializer_list>
#include <vector>

namespace sagaflow::http {
namespace {

using Digest = std::array<unsigned char, 32>;

// HMAC-SHA256 over the concatenated parts, with OpenSSL 3's EVP_MAC API (HMAC_* is deprecated).
bool hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts, Digest& out) {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  if (ctx == nullptr) return false;
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0),
                               OSSL_PARAM_construct_end()};
  bool ok = EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                         params) == 1;
  for (std::string_view p : parts) {
    ok = ok && EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(p.data()), p.size()) == 1;
  }
  std::size_t len = 0;
  ok = ok && EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
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

// Standard base64 with padding ('=' only as the last one or two characters); nullopt for
// anything else, and for an empty result.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  const std::size_t pad_from = text.find('=');
  if (pad_from != std::string_view::npos &&
      (pad_from < text.size() - 2 ||
       text.find_first_not_of('=', pad_from) != std::string_view::npos))
    return std::nullopt;
  const std::string_view data = text.substr(0, pad_from);
  if (data.empty()) return std::nullopt;
  for (char c : data) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string encode_base64(const Digest& d) {
  std::string out(4 * ((d.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), d.data(),
                                static_cast<int>(d.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::int64_t> parse_seconds(std::string_view text) {
  std::int64_t t = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), t);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return t;
}

bool fresh(std::int64_t t, std::int64_t now_s) {
  return t <= now_s + kSignatureToleranceS && t >= now_s - kSignatureToleranceS;
}

// The expected digest of the signed content for every usable secret.
std::vector<Digest> expected_digests(std::span<const std::string> secrets,
                                     std::initializer_list<std::string_view> parts) {
  std::vector<Digest> out;
  out.reserve(secrets.size());
  for (const auto& secret : secrets) {
    const auto key = secret_key(secret);
    Digest d{};
    if (key && hmac_sha256(*key, parts, d)) out.push_back(d);
  }
  return out;
}

// Compared against every expected digest, in constant time, whatever matched before.
bool matches_any(const std::vector<Digest>& expected, const Digest& candidate) {
  bool matched = false;
  for (const auto& e : expected)
    matched |= CRYPTO_memcmp(e.data(), candidate.data(), e.size()) == 0;
  return matched;
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

std::optional<std::string> secret_key(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) != kPrefix) return std::string(secret);
  return decode_base64(secret.substr(kPrefix.size()));
}

SignatureCheck verify_signature(std::string_view header, std::string_view body,
                                std::span<const std::string> secrets, std::int64_t now_s) {
  header = trim(header);
  if (header.empty()) return SignatureCheck::missing;
  std::string_view t_text;
  bool has_t = false;
  std::vector<Digest> candidates;
  while (!header.empty()) {
    const auto comma = header.find(',');
    const std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;  // malformed entry: skipped
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      if (has_t) return SignatureCheck::malformed;  // two timestamps: which one was signed?
      has_t = true;
      t_text = value;
    } else if (key == "v1") {
      Digest d{};
      if (decode_hex(value, d)) candidates.push_back(d);  // a malformed v1 is skipped
    }                                                     // other versions (v0, ...) are skipped
  }
  const auto t = parse_seconds(t_text);
  if (!t || candidates.empty()) return SignatureCheck::malformed;
  if (!fresh(*t, now_s)) return SignatureCheck::stale;
  const auto expected = expected_digests(secrets, {t_text, ".", body});
  bool matched = false;
  for (const auto& c : candidates) matched |= matches_any(expected, c);
  return matched ? SignatureCheck::ok : SignatureCheck::mismatch;
}

SignatureCheck verify_standard(std::string_view webhook_id, std::string_view webhook_timestamp,
                               std::string_view webhook_signature, std::string_view body,
                               std::span<const std::string> secrets, std::int64_t now_s) {
  webhook_id = trim(webhook_id);
  webhook_timestamp = trim(webhook_timestamp);
  webhook_signature = trim(webhook_signature);
  if (webhook_signature.empty()) return SignatureCheck::missing;
  const auto t = parse_seconds(webhook_timestamp);
  if (webhook_id.empty() || !t) return SignatureCheck::malformed;
  std::vector<Digest> candidates;
  while (!webhook_signature.empty()) {
    const auto space = webhook_signature.find(' ');
    const std::string_view entry = webhook_signature.substr(0, space);
    webhook_signature = space == std::string_view::npos ? std::string_view{}
                                                        : trim(webhook_signature.substr(space + 1));
    const auto comma = entry.find(',');
    if (comma == std::string_view::npos || entry.substr(0, comma) != "v1") continue;
    const auto raw = decode_base64(entry.substr(comma + 1));
    if (!raw || raw->size() != sizeof(Digest)) continue;  // malformed: skipped
    Digest d{};
    std::copy(raw->begin(), raw->end(), d.begin());
    candidates.push_back(d);
  }
  if (candidates.empty()) return SignatureCheck::malformed;
  if (!fresh(*t, now_s)) return SignatureCheck::stale;
  const auto expected = expected_digests(secrets, {webhook_id, ".", webhook_timestamp, ".", body});
  bool matched = false;
  for (const auto& c : candidates) matched |= matches_any(expected, c);
  return matched ? SignatureCheck::ok : SignatureCheck::mismatch;
}

std::string sign(std::string_view secret, std::int64_t t, std::string_view body) {
  const std::string s(secret);
  return sign(std::span<const std::string>(&s, 1), t, body);
}

std::string sign(std::span<const std::string> secrets, std::int64_t t, std::string_view body) {
  const std::string t_text = std::to_string(t);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "t=" + t_text;
  for (const auto& d : expected_digests(secrets, {t_text, ".", body})) {
    out += ",v1=";
    for (unsigned char b : d) {
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

std::string sign_standard(std::span<const std::string> secrets, std::string_view webhook_id,
                          std::int64_t t, std::string_view body) {
  const std::string t_text = std::to_string(t);
  std::string out;
  for (const auto& d : expected_digests(secrets, {webhook_id, ".", t_text, ".", body})) {
    if (!out.empty()) out.push_back(' ');
    out += "v1,";
    out += encode_base64(d);
  }
  return out;
}

}  // namespace sagaflow::http
