#include "app/webhook/webhook_handler.hpp"

#include <fmt/format.h>

#include "core/log.hpp"
#include "http/webhook_signature.hpp"

namespace sagaflow::app {
namespace {

http::Response json_error(int status, std::string_view error, std::string_view detail) {
  std::string body = "{\"error\":";
  append_json_string(body, error);
  body += ",\"detail\":";
  append_json_string(body, detail);
  body += "}\n";
  return http::Response{status, "application/json", std::move(body)};
}

}  // namespace

WebhookHandler::WebhookHandler(std::vector<std::string> secrets, const Clock& clock,
                               PublishFn publish, std::size_t max_message_bytes,
                               std::function<bool()> ready)
    : secrets_(std::move(secrets)),
      clock_(clock),
      publish_(std::move(publish)),
      ready_(std::move(ready)),
      parser_(max_message_bytes) {}

void WebhookHandler::operator()(const http::Request& req, http::Respond respond) {
  if (req.path == "/healthz") {
    respond(http::Response{200, "text/plain; charset=utf-8", "ok\n"});
    return;
  }
  if (req.path == "/readyz") {
    const bool up = !ready_ || ready_();
    respond(http::Response{up ? 200 : 503, "text/plain; charset=utf-8",
                           up ? "ready\n" : "broker unavailable\n"});
    return;
  }
  constexpr std::string_view kPrefix = "/webhooks/";
  if (req.path.size() <= kPrefix.size() || req.path.compare(0, kPrefix.size(), kPrefix) != 0) {
    respond(json_error(404, "not_found", "POST /webhooks/<source>"));
    return;
  }
  if (req.method != "POST") {
    respond(json_error(405, "method_not_allowed", "use POST"));
    return;
  }
  if (req.body.size() > parser_.max_message_bytes()) {  // chunked bodies: no Content-Length
    respond(json_error(413, "too_large",
                       fmt::format("body over {} bytes", parser_.max_message_bytes())));
    return;
  }
  // Either scheme may sign a request (CONTRACT.md section 7); with both headers, one match
  // is enough.
  const std::int64_t now_s = clock_.now_ms() / 1000;
  auto check = http::SignatureCheck::missing;
  if (const auto standard = req.header("webhook-signature"); !standard.empty()) {
    check = http::verify_standard(req.header("webhook-id"), req.header("webhook-timestamp"),
                                  standard, req.body, secrets_, now_s);
  }
  if (const auto ours = req.header("x-sagaflow-signature");
      check != http::SignatureCheck::ok && !ours.empty()) {
    const auto c = http::verify_signature(ours, req.body, secrets_, now_s);
    if (c == http::SignatureCheck::ok || check == http::SignatureCheck::missing) check = c;
  }
  if (check != http::SignatureCheck::ok) {
    respond(json_error(401, "bad_signature", http::to_string(check)));
    return;
  }
  if (auto st = parser_.parse(req.body, event_); !st) {
    respond(json_error(400, reason_code(st.error().code), st.error().detail));
    return;
  }
  const std::string source = req.path.substr(kPrefix.size());
  OutgoingEvent out{std::string(to_string(event_.type)), event_.id.str(), req.body,
                    std::string(event_.order_id.view())};
  publish_(std::move(out), [this, respond = std::move(respond), source,
                            id = event_.id.str()](Status st) {
    if (!st) {
      log::warn("webhook publish failed",
                {{"source", source}, {"event_id", id}, {"error", st.error().detail}});
      respond(json_error(503, "unavailable", "the broker did not confirm; nothing was published"));
      return;
    }
    ++accepted_;
    std::string body = "{\"accepted\":";
    append_json_string(body, id);
    body += "}\n";
    respond(http::Response{202, "application/json", std::move(body)});
  });
}

}  // namespace sagaflow::app
