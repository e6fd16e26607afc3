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
// Outgoing webhooks (sagaflow deliver): declared by the deliver command at start, bound to
// every event; `topology apply` keeps it consistent once it exists.
inline constexpr std::string_view kDeliveriesQueue = "sagaflow.deliveries";

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
// Retried messages wait in a retry topic of their consumer group, "sagaflow.retry.<group>"
// (kafka_retry_topic), which that group consumes too; header x-sagaflow-not-before says when.
inline constexpr std::string_view kRetryTopicPrefix = "sagaflow.retry.";
inline constexpr std::string_view kSagaGroup = "sagaflow-saga";
inline constexpr std::string_view kParticipantsGroup = "sagaflow-participants";
inline constexpr std::string_view kDeliverGroup = "sagaflow-deliver";
inline constexpr std::string_view kDlqReplayGroup = "sagaflow-dlq-replay";  // dlq replay's offsets

// Headers.
inline constexpr std::string_view kHeaderAttempts =
    "x-sagaflow-attempts";                                            // integer, deliveries so far
inline constexpr std::string_view kHeaderError = "x-sagaflow-error";  // reason code
inline constexpr std::string_view kHeaderDetail = "x-sagaflow-detail";  // one line
inline constexpr std::string_view kHeaderOriginalRoute =
    "x-sagaflow-original-route";  // routing key / topic
// A dead letter's own id (the dead-letter index's key; the console replays by it).
inline constexpr std::string_view kHeaderDeadLetterId = "x-sagaflow-dead-letter-id";
// On a dead letter whose body the broker refused as too large (kept without it): the body's
// size in bytes and its SHA-256 (hex), so it can be matched with the producer's copy.
inline constexpr std::string_view kHeaderBodySize = "x-sagaflow-body-size";
inline constexpr std::string_view kHeaderBodySha256 = "x-sagaflow-body-sha256";

// Kafka record headers that carry what AMQP has as properties (values are UTF-8 text;
// integers in decimal).
inline constexpr std::string_view kKafkaHeaderType =
    "type";  // the envelope type (AMQP routing key)
inline constexpr std::string_view kKafkaHeaderMessageId = "message_id";
inline constexpr std::string_view kKafkaHeaderContentType = "content_type";
inline constexpr std::string_view kHeaderNotBefore = "x-sagaflow-not-before";  // unix ms

inline constexpr std::string_view kContentType = "application/json";

// Retry delay tiers (milliseconds). The consumer's retry policy and the applied topology must
// use the same list; tests apply shorter tiers.
inline constexpr std::array<std::int64_t, 4> kDefaultRetryTiersMs = {1000, 5000, 30000, 120000};

// "sagaflow.retry.1s", "sagaflow.retry.2m", "sagaflow.retry.250ms": both the tier's exchange
// and its queue.
std::string retry_tier_name(std::int64_t delay_ms);

// "sagaflow.retry.sagaflow-saga": where the Kafka consumer group `group` parks its retries.
std::string kafka_retry_topic(std::string_view group);

}  // namespace sagaflow::topology
