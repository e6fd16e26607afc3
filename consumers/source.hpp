#pragma once
// The Source interface: deliveries from a broker (RabbitMQ queue, Kafka consumer group) and
// how each one is settled. Implemented by RabbitSource; the Kafka source implements it too.
//
// Contract (at-least-once):
// - The handler is called on the loop thread with one Delivery at a time, in broker order.
//   The Delivery's views stay valid until that delivery is settled (or the source stopped).
// - The handler's owner must settle every delivery exactly once, now or later, with a
//   Verdict; nothing is acknowledged to the broker before that:
//     ack          the effects are durable: the broker forgets the message.
//     retry        the content failed in a way that may pass: a copy goes back to the queue
//                  after an exponential backoff with jitter, carrying attempt + 1; the
//                  original is acked only once the copy is safely with the broker. When this
//                  was delivery number SAGAFLOW_MAX_ATTEMPTS, the message is dead-lettered
//                  instead, reason retries_exhausted (the retry's detail kept).
//     dead_letter  the content can never succeed (malformed_json, invalid_event,
//                  unknown_type, unknown_saga, too_large): published at once to the
//                  dead-letter exchange with headers x-sagaflow-error (reason code),
//                  x-sagaflow-detail, x-sagaflow-attempts, x-sagaflow-original-route and
//                  the body byte for byte, then the original is acked once that is confirmed.
// - A delivery not settled when the connection drops, or when the process dies, is given
//   again by the broker (redelivered = true), to this or another worker; the effects must be
//   idempotent (dedup by envelope id). Settling a delivery of a lost connection is a no-op.
// - Transient failures (a dependency down) are not a verdict: keep the delivery unsettled,
//   pause() intake, resume() when the dependency is back.
// - pause(): no new delivery reaches the handler until resume(); in-flight ones may still be
//   settled. stop(on_stopped): stop taking deliveries, wait for the in-flight ones to be
//   settled (bounded by a drain timeout), acknowledge them, close, then call on_stopped.
// - Never destroy a source inside one of its own callbacks.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.hpp"

namespace sagaflow {

struct Delivery {
  std::uint64_t tag = 0;         // opaque; unique across reconnects of one source
  std::string_view body;         // the message bytes, unchanged
  std::string_view routing_key;  // the original route (kept across retries), e.g. "order.created"
  std::string_view message_id;   // AMQP message_id (the envelope id), may be empty
  int attempt = 1;               // 1 on first delivery, +1 per retry (x-sagaflow-attempts)
  bool redelivered = false;      // the broker gave it before and it was not settled
};

struct Verdict {
  enum class Kind : std::uint8_t { ack, retry, dead_letter };
  Kind kind = Kind::ack;
  Errc reason = Errc::internal;  // retry / dead_letter: why (the dead-letter reason code)
  std::string detail;            // one line

  static Verdict ack() { return {}; }
  static Verdict retry(Errc reason, std::string detail) {
    return {Kind::retry, reason, std::move(detail)};
  }
  static Verdict dead_letter(Errc reason, std::string detail) {
    return {Kind::dead_letter, reason, std::move(detail)};
  }
};

// A dead-letter copy the broker confirmed: what the dead-letter index records
// (store/dead_letters.hpp). Called on the loop thread, at most once per copy confirmed.
struct DeadLetterNote {
  std::string id;  // x-sagaflow-dead-letter-id
  std::string reason;
  std::string detail;
  std::int64_t attempts = 0;
  std::string route;  // the original route
  std::string message_id;
  std::string where;      // the dead-letter exchange's queue or topic
  std::string_view body;  // valid during the call only
};
using DeadLetterListener = std::function<void(const DeadLetterNote&)>;

class Source {
 public:
  using Handler = std::function<void(const Delivery&)>;

  virtual ~Source() = default;

  virtual void start(Handler handler) = 0;
  virtual void pause() noexcept = 0;
  virtual void resume() noexcept = 0;
  virtual void settle(std::uint64_t tag, Verdict verdict) = 0;
  virtual void stop(std::function<void()> on_stopped = {}) noexcept = 0;

  virtual bool connected() const noexcept = 0;
  // Deliveries can be read now: connected and, on Kafka, holding an assignment (false while a
  // group rebalance has revoked everything). Step timeouts wait while this is false.
  virtual bool reading() const noexcept { return connected(); }
  virtual bool paused() const noexcept = 0;
  // Deliveries handed to the handler and not yet settled.
  virtual std::size_t in_flight() const noexcept = 0;
  // Called when connected() changes (for /readyz).
  virtual void on_state_change(std::function<void(bool connected)> fn) = 0;
};

}  // namespace sagaflow
