#pragma once
// Who may use the console (CONTRACT.md section 10), as a pure function of the request, so that
// every rule is unit-tested without a server:
// - With SAGAFLOW_CONSOLE_TOKEN set, every request but /healthz and /login needs
//   `Authorization: Bearer <token>` or a valid session cookie, else 401. A POST authenticated
//   by the cookie also needs `X-CSRF-Token` = the page's csrf token, else 403 (a Bearer request
//   is not something a browser sends by itself, so it needs none).
// - Without a token (loopback only), a request whose Host is not the listening address or
//   localhost with its port is refused, 403 (DNS rebinding), and every POST needs the CSRF header.
// The session cookie is "<id>.<issued s>.<hex HMAC-SHA256(key, id.issued)>", the key derived
// from the token: valid for 12 h, nothing stored server-side, all void once the token changes.
// Comparisons of secrets take the same time whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/server.hpp"

namespace sagaflow::app::console {

inline constexpr std::string_view kSessionCookie = "sagaflow_session";
inline constexpr std::int64_t kSessionSeconds = 12 * 3600;

class Access {
 public:
  // `token` empty: none. `random` seeds the CSRF token when there is no token (32 hex chars).
  Access(std::string token, std::string listen_host, int listen_port, std::string random_hex);

  bool has_token() const noexcept { return !token_.empty(); }
  const std::string& csrf_token() const noexcept { return csrf_; }

  struct Decision {
    int status = 0;   // 0: allowed; else 401 or 403
    std::string who;  // allowed: "bearer", "session:<id>" or "local"
    std::string detail;
  };
  Decision check(const http::Request& request, std::int64_t now_s) const;

  bool token_matches(std::string_view candidate) const noexcept;
  // A new session cookie's value (`id`: random hex) and its Set-Cookie header line.
  std::string session_value(std::string_view id, std::int64_t now_s) const;
  std::string set_cookie(std::string_view value) const;

  void set_port(int port) noexcept { port_ = port; }

 private:
  bool host_allowed(std::string_view host) const;
  // The session id when the cookie is valid now, else empty.
  std::string session_of(std::string_view cookie_header, std::int64_t now_s) const;

  std::string token_;
  std::string host_;
  int port_;
  std::string csrf_;
  std::string session_key_;
};

// 127/8, ::1 or localhost: where the console may listen without a token.
bool is_loopback_address(std::string_view host) noexcept;
// `bytes` random bytes from the system's random device, as hex.
std::string random_hex(std::size_t bytes);
// Constant-time equality (length is not secret).
bool same_secret(std::string_view a, std::string_view b) noexcept;
// A value of an application/x-www-form-urlencoded body; nullopt-like "" when absent.
std::string form_value(std::string_view body, std::string_view name);

}  // namespace sagaflow::app::console
