#pragma once
// Every broker name of CONTRACT.md section 6 in one place, plus the retry tiers and the
// headers sagaflow writes. Other modules take names from here; nothing else spells them.
//
// RabbitMQ retry path (see topology/README.md):
//   consumer --copy, attempt+1--> exchange sagaflow.retry.<tier> (fanout, routing key = the
//   queue the message came from) --> queue sagaflow.retry.<tier> (x-message-ttl = tier, each
//   copy also carries a per-message expiration <= tier for jitter) --TTL expiry, dead-lettered
//   with its routing key--> exchange sagaflow.retry.return (direct) --key = queue name-->
//   back to the original queue. The copy keeps its original routing key in a header.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sagaflow::topology {

// Exchanges.
inline constexpr std::string_view kEventsExchange = "sagaflow.events";  // topic, routing key = type
inline constexpr std::string_view kCommandsExchange =
    "sagaflow.commands";  // topic, routing key = type
inline constexpr std::string_view kDeadLetterExchange = "sagaflow.dlx";  // fanout
inline constexpr std::string_view kRetryReturnExchange =
    "sagaflow.retry.return";  // direct, key = queue

// Queues.
inline constexpr std::string_view kSagaQueue = "sagaflow.saga";
inline constexpr std::string_view kParticipantsQueue = "sagaflow.participants";
inline constexpr std::string_view kDeadQueue = "sagaflow.dead";

// Bindings.
inline constexpr std::array<std::string_view, 5> kSagaBindings = {
    "order.created", "order.cancelled", "inventory.*", "payment.*", "shipment.*"};
inline constexpr std::array<std::string_view, 1> kParticipantsBindings = {"#"};
// Queues that a retried message can return to (each bound to kRetryReturnExchange by name).
inline constexpr std::array<std::string_view, 2> kRetryableQueues = {kSagaQueue,
                                                                     kParticipantsQueue};

// Kafka.
inline constexpr std::string_view kEventsTopic = "sagaflow.events";      // key = order_id
inline constexpr std::string_view kCommandsTopic = "sagaflow.commands";  // key = order_id
inline constexpr std::string_view kDeadTopic = "sagaflow.dead";
inline constexpr std::string_view kSagaGroup = "sagaflow-saga";
inline constexpr std::string_view kParticipantsGroup = "sagaflow-participants";

// Headers.
inline constexpr std::string_view kHeaderAttempts =
    "x-sagaflow-attempts";                                            // integer, deliveries so far
inline constexpr std::string_view kHeaderError = "x-sagaflow-error";  // reason code
inline constexpr std::string_view kHeaderDetail = "x-sagaflow-detail";  // one line
inline constexpr std::string_view kHeaderOriginalRoute =
    "x-sagaflow-original-route";  // routing key / topic

inline constexpr std::string_view kContentType = "application/json";

// Retry delay tiers (milliseconds). The consumer's retry policy and the applied topology must
// use the same list; tests apply shorter tiers.
inline constexpr std::array<std::int64_t, 4> kDefaultRetryTiersMs = {1000, 5000, 30000, 120000};

// "sagaflow.retry.1s", "sagaflow.retry.2m", "sagaflow.retry.250ms": both the tier's exchange
// and its queue.
std::string retry_tier_name(std::int64_t delay_ms);

}  // namespace sagaflow::topology
