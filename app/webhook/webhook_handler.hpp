#pragma once
// The webhook ingress (CONTRACT.md section 7) as a request handler with injected effects:
//   POST /webhooks/<source>, body = envelope, signed with X-Sagaflow-Signature or with the
//   Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).
//   202 after the broker confirmed the publish; 400 malformed or invalid envelope; 401 bad or
//   missing signature; 413 over the size limit (decided by http::Server before any HMAC
//   work); 503 broker unavailable (nothing published). GET /healthz is 200;
//   GET /readyz is 200 only while the broker connection is up.
// The event id still deduplicates downstream: a replayed webhook publishes the same id.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "http/server.hpp"

namespace sagaflow::app {

struct OutgoingEvent {
  std::string routing_key;  // the event type
  std::string message_id;   // the envelope id
  std::string body;         // the raw body, byte for byte
  std::string key;          // data.order_id (the Kafka record key); may be empty
};

// Publishes one event; calls done with ok after the broker confirmed, or an error.
using PublishFn = std::function<void(OutgoingEvent, std::function<void(Status)> done)>;

class WebhookHandler {
 public:
  WebhookHandler(std::vector<std::string> secrets, const Clock& clock, PublishFn publish,
                 std::size_t max_message_bytes, std::function<bool()> ready = {});
  void operator()(const http::Request& request, http::Respond respond);

  std::uint64_t accepted() const noexcept { return accepted_; }

 private:
  std::vector<std::string> secrets_;
  const Clock& clock_;
  PublishFn publish_;
  std::function<bool()> ready_;
  EnvelopeParser parser_;
  Event event_;
  std::uint64_t accepted_ = 0;
};

}  // namespace sagaflow::app
