#include "app/console/access.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <random>
#include <utility>

#include <fmt/format.h>

namespace sagaflow::app::console {
namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

std::string hmac_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return hex(mac, len);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", rd() & 0xff);
  return out;
}

bool same_secret(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string form_value(std::string_view body, std::string_view name) {
  while (!body.empty()) {
    const auto amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const auto eq = pair.find('=');
    if (url_decode(pair.substr(0, eq)) == name) {
      return eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return {};
}

Access::Access(std::string token, std::string listen_host, int listen_port, std::string random_hex)
    : token_(std::move(token)), host_(std::move(listen_host)), port_(listen_port) {
  if (token_.empty()) {
    csrf_ = std::move(random_hex);
  } else {
    csrf_ = hmac_hex(token_, "sagaflow console csrf");
    session_key_ = hmac_hex(token_, "sagaflow console session");
  }
}

bool Access::token_matches(std::string_view candidate) const noexcept {
  // Compared as MACs of equal length: neither the bytes nor the token's length leak by timing.
  return !token_.empty() &&
         same_secret(hmac_hex(session_key_, candidate), hmac_hex(session_key_, token_));
}

std::string Access::session_value(std::string_view id, std::int64_t now_s) const {
  const std::string signed_part = fmt::format("{}.{}", id, now_s);
  return signed_part + "." + hmac_hex(session_key_, signed_part);
}

std::string Access::set_cookie(std::string_view value) const {
  return fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", kSessionCookie, value,
                     kSessionSeconds);
}

std::string Access::session_of(std::string_view cookies, std::int64_t now_s) const {
  // Cookie: a=b; sagaflow_session=<id>.<issued>.<mac>
  while (!cookies.empty()) {
    const auto semi = cookies.find(';');
    std::string_view item = cookies.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == kSessionCookie) {
      const std::string_view value = item.substr(eq + 1);
      const auto last = value.rfind('.');
      if (last == std::string_view::npos) return {};
      const std::string_view signed_part = value.substr(0, last);
      if (!same_secret(value.substr(last + 1), hmac_hex(session_key_, signed_part))) return {};
      const auto dot = signed_part.find('.');
      if (dot == std::string_view::npos) return {};
      std::int64_t issued = 0;
      const std::string_view ts = signed_part.substr(dot + 1);
      auto [ptr, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), issued);
      if (ec != std::errc() || ptr != ts.data() + ts.size()) return {};
      if (now_s < issued - 60 || now_s - issued > kSessionSeconds) return {};
      return std::string(signed_part.substr(0, dot));
    }
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return {};
}

bool Access::host_allowed(std::string_view host) const {
  const std::string port = std::to_string(port_);
  if (host == host_ + ":" + port || host == "localhost:" + port) return true;
  // An IPv6 listener is named in brackets in a Host header.
  return host_.find(':') != std::string::npos && host == "[" + host_ + "]:" + port;
}

Access::Decision Access::check(const http::Request& r, std::int64_t now_s) const {
  const bool open_path = r.path == "/healthz" || r.path == "/login";
  const bool post = r.method == "POST";
  const std::string_view csrf = r.header("x-csrf-token");
  if (token_.empty()) {
    if (r.path != "/healthz" && !host_allowed(r.header("host"))) {
      return {403, {}, "this console answers only to its own address (Host header)"};
    }
    if (post && r.path != "/login" && !same_secret(csrf, csrf_)) {
      return {403, {}, "a POST needs the X-CSRF-Token header of the page"};
    }
    return {0, "local", {}};
  }
  if (open_path) return {0, "anonymous", {}};
  const std::string_view auth = r.header("authorization");
  constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive (RFC 7235)
  const bool bearer = auth.size() > kBearer.size() &&
                      std::equal(kBearer.begin(), kBearer.end(), auth.begin(), [](char a, char b) {
                        return a == std::tolower(static_cast<unsigned char>(b));
                      });
  if (bearer && token_matches(auth.substr(kBearer.size()))) {
    return {0, "bearer", {}};
  }
  const std::string session = session_of(r.header("cookie"), now_s);
  if (session.empty()) {
    return {401, {}, "log in at /login, or send Authorization: Bearer <SAGAFLOW_CONSOLE_TOKEN>"};
  }
  if (post && !same_secret(csrf, csrf_)) {
    return {403, {}, "a POST needs the X-CSRF-Token header of the page"};
  }
  return {0, "session:" + session, {}};
}

bool is_loopback_address(std::string_view host) noexcept {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace sagaflow::app::console
