#pragma once
// Re-publishing dead letters to their original route, on either broker: the one path of
// `sagaflow dlq replay` and the console's replay (CONTRACT.md sections 1 and 10). Blocking
// (the console runs it on libuv's thread pool). A dead letter is acknowledged (RabbitMQ) or
// committed past (Kafka) only after the broker confirmed its re-publish: a crash in between
// re-publishes at worst (same event id, deduplicated downstream), never loses.
//
// RabbitMQ: basic.get through sagaflow.dead; a selected one is re-published to sagaflow.events
// with its original routing key and acked; the others stay unacked until the channel closes,
// which returns them to the queue in their order. The scan takes at most the messages ready when
// it began (a replayed one dead-lettered again meanwhile is not taken twice) and ends early once
// `limit` were replayed.
// Kafka: app/impl/kafka_dlq.hpp's replay, with the same selection.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::app {

struct DeadLetterRef {
  std::string id;      // x-sagaflow-dead-letter-id ("" on copies made before it existed)
  std::string reason;  // x-sagaflow-error
};

// Empty: every dead letter.
using DeadLetterSelect = std::function<bool(const DeadLetterRef&)>;

struct ReplayOutcome {
  std::int64_t replayed = 0;
  std::vector<std::string> ids;  // the replayed ones that carried an id
  std::int64_t passed = 0;       // Kafka: kept without their body, so not replayable; passed
  // Every dead letter the scan was to look at was looked at (not stopped by `limit` or an error).
  bool complete = false;
  // Set when the replay stopped on a failure; `replayed` and `ids` still say what went back
  // (and was acked or committed) before it.
  std::optional<Error> error;
};

ReplayOutcome replay_dead_letters(const Config& config, std::int64_t limit,
                                  const DeadLetterSelect& select = {});

}  // namespace sagaflow::app
