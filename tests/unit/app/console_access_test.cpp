// The console's access rules (CONTRACT.md section 10), request by request.
#include <catch2/catch.hpp>

#include <string>

#include "app/console/access.hpp"

using namespace sagaflow;
using sagaflow::app::console::Access;

namespace {
http::Request request(std::string method, std::string path,
                      std::vector<std::pair<std::string, std::string>> headers) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = std::move(headers);
  return r;
}
constexpr std::int64_t kNow = 1'800'000'000;
}  // namespace

TEST_CASE("without a token: only its own Host, and every POST carries the page's CSRF token",
          "[console][access]") {
  const Access a("", "127.0.0.1", 8090, "feedfacefeedfacefeedfacefeedface");
  CHECK(a.csrf_token() == "feedfacefeedfacefeedfacefeedface");
  for (const char* host : {"127.0.0.1:8090", "localhost:8090"}) {
    const auto d = a.check(request("GET", "/api/overview", {{"host", host}}), kNow);
    CHECK(d.status == 0);
    CHECK(d.who == "local");
  }
  // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host
  for (const char* host : {"evil.example:8090", "127.0.0.1:8091", "localhost", ""}) {
    INFO(host);
    CHECK(a.check(request("GET", "/api/overview", {{"host", host}}), kNow).status == 403);
  }
  CHECK(a.check(request("GET", "/healthz", {{"host", "anything"}}), kNow).status == 0);
  const auto no_csrf =
      a.check(request("POST", "/api/dead-letters/replay", {{"host", "localhost:8090"}}), kNow);
  CHECK(no_csrf.status == 403);
  CHECK(a.check(request("POST", "/api/dead-letters/replay",
                        {{"host", "localhost:8090"}, {"x-csrf-token", "feedface"}}),
                kNow)
            .status == 403);
  CHECK(a.check(request("POST", "/api/dead-letters/replay",
                        {{"host", "localhost:8090"},
                         {"x-csrf-token", "feedfacefeedfacefeedfacefeedface"}}),
                kNow)
            .status == 0);
}

TEST_CASE("with a token: Bearer or a session cookie, and cookie POSTs need the CSRF header",
          "[console][access]") {
  Access a("s3cret-token", "0.0.0.0", 8090, "unused");
  CHECK(a.has_token());
  CHECK(a.csrf_token() != "unused");
  CHECK(a.csrf_token().size() == 64);
  // Nothing: 401, except /healthz and /login
  CHECK(a.check(request("GET", "/api/overview", {}), kNow).status == 401);
  CHECK(a.check(request("GET", "/", {}), kNow).status == 401);
  CHECK(a.check(request("GET", "/healthz", {}), kNow).status == 0);
  CHECK(a.check(request("POST", "/login", {}), kNow).status == 0);
  // Bearer: the token exactly; POSTs need no CSRF header
  CHECK(a.check(request("GET", "/api/overview", {{"authorization", "Bearer s3cret-token"}}), kNow)
            .who == "bearer");
  CHECK(a.check(request("POST", "/api/sagas/o/resend", {{"authorization", "Bearer s3cret-token"}}),
                kNow)
            .status == 0);
  CHECK(a.check(request("GET", "/api/overview", {{"authorization", "bearer s3cret-token"}}), kNow)
            .status == 0);
  for (const char* wrong : {"Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer  s3cret-token",
                            "Basic s3cret-token", "Bearer ", "Bearers3cret-token"}) {
    INFO(wrong);
    CHECK(a.check(request("GET", "/api/overview", {{"authorization", wrong}}), kNow).status == 401);
  }
  // A session cookie as /login sets it
  const std::string value = a.session_value("abcd1234", kNow);
  const std::string cookie = "theme=dark; sagaflow_session=" + value;
  const auto d = a.check(request("GET", "/api/overview", {{"cookie", cookie}}), kNow + 10);
  CHECK(d.status == 0);
  CHECK(d.who == "session:abcd1234");
  CHECK(a.set_cookie(value).find("HttpOnly; SameSite=Strict") != std::string::npos);
  // Cookie POSTs: 403 without the page's CSRF token, allowed with it
  CHECK(a.check(request("POST", "/api/sagas/o/resend", {{"cookie", cookie}}), kNow).status == 403);
  CHECK(a.check(request("POST", "/api/sagas/o/resend",
                        {{"cookie", cookie}, {"x-csrf-token", a.csrf_token()}}),
                kNow)
            .status == 0);
  // Forged, tampered, expired, or from another token: 401
  std::string tampered = value;
  tampered[0] = tampered[0] == 'a' ? 'b' : 'a';
  const Access other("another-token", "0.0.0.0", 8090, "x");
  for (const std::string& bad :
       {std::string("sagaflow_session=") + tampered, std::string("sagaflow_session=abc"),
        std::string("sagaflow_session=") + other.session_value("abcd1234", kNow),
        std::string("sagaflow_session=")}) {
    INFO(bad);
    CHECK(a.check(request("GET", "/api/overview", {{"cookie", bad}}), kNow).status == 401);
  }
  CHECK(a.check(request("GET", "/api/overview", {{"cookie", cookie}}),
                kNow + app::console::kSessionSeconds + 1)
            .status == 401);
}

TEST_CASE("form values and the loopback rule", "[console][access]") {
  using app::console::form_value;
  CHECK(form_value("token=a%2Bb%20c+d&x=1", "token") == "a+b c d");
  CHECK(form_value("x=1&token=", "token").empty());
  CHECK(form_value("tokens=1", "token").empty());
  CHECK(form_value("token=%zz", "token") == "%zz");
  CHECK(app::console::is_loopback_address("127.0.0.1"));
  CHECK(app::console::is_loopback_address("::1"));
  CHECK_FALSE(app::console::is_loopback_address("0.0.0.0"));
  CHECK_FALSE(app::console::is_loopback_address("10.0.0.1"));
  CHECK(app::console::same_secret("abc", "abc"));
  CHECK_FALSE(app::console::same_secret("abc", "abd"));
  CHECK_FALSE(app::console::same_secret("abc", "abcd"));
}
