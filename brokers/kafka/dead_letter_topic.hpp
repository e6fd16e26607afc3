#pragma once
// The dead-letter topic on Kafka for the command-line tools (dlq list, dlq replay, status):
// blocking librdkafka calls with bounded timeouts. librdkafka stays in dead_letter_topic.cpp.
//
// Position: the dead letters still to handle are, per partition of sagaflow.dead, those from
// the committed offset of the consumer group sagaflow-dlq-replay (the low watermark if it has
// none, or if retention deleted the committed one) up to the high watermark read at the start
// of the call. Only replay commits; list and depth read the position and change nothing.
// Partitions are read in order (0, 1, ...), each from its position up, so `list --limit N`
// shows exactly the N that `replay --limit N` would replay.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace sagaflow::brokers {

struct KafkaDlqOptions {
  std::string brokers;                  // bootstrap.servers
  std::int64_t timeout_ms = 5000;       // each broker round trip (metadata, offsets, a commit)
  std::int64_t idle_timeout_ms = 8000;  // reading or publishing: longest wait with no progress
};

struct KafkaDeadLetter {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;  // nullopt: the record has no key
  std::string value;               // the original body, byte for byte
  // Every record header in order, values as text (sagaflow writes UTF-8); a header with a null
  // value has an empty one.
  std::vector<std::pair<std::string, std::string>> headers;

  // The last value of header `name`, "" if absent.
  std::string header(std::string_view name) const;
};

// Dead letters not yet replayed: sum over partitions of (high watermark - position).
// 0 when the topic does not exist.
Result<std::int64_t> kafka_dlq_depth(const KafkaDlqOptions& options);

// Calls `visit` for up to `limit` dead letters from the position; commits nothing.
// Returns how many were visited.
Result<std::int64_t> kafka_dlq_list(const KafkaDlqOptions& options, std::int64_t limit,
                                    const std::function<void(const KafkaDeadLetter&)>& visit);

// Re-publishes up to `limit` dead letters from the position to kafka_replay_topic(original
// route), value and key unchanged, with every header but the x-sagaflow-* ones (so the event
// starts again at attempt 1); idempotent producer, acks=all. Each one's delivery report is
// awaited, then the offsets after the replayed ones are committed for the group. Returns how
// many were replayed and committed. On an error, what was confirmed is still committed and the
// error's detail says how many that was.
// With `select` (the console's replay of chosen ids or one reason): only the dead letters it
// accepts are re-published (up to `limit` of them, all pending ones read); a partition's offset
// is committed only past its first run of replayed ones, so a skipped dead letter stays pending
// for a later replay, and a selected one after it may be replayed again (same id, deduplicated
// downstream). `replayed` is told each one the broker confirmed.
using KafkaDlqSelect = std::function<bool(const KafkaDeadLetter&)>;
// A dead letter kept without its body (kHeaderBodySize) is never re-published: a full replay
// passes it (the group's position moves past it; it stays in the topic) and tells `passed`.
Result<std::int64_t> kafka_dlq_replay(
    const KafkaDlqOptions& options, std::int64_t limit, const KafkaDlqSelect& select = {},
    const std::function<void(const KafkaDeadLetter&)>& replayed = {},
    const std::function<void(const KafkaDeadLetter&)>& passed = {});

// Where a dead letter goes back to: its x-sagaflow-original-route topic; sagaflow.events when
// that is empty or a retry topic, except the participants' retry topic, which goes to
// sagaflow.commands (what that group consumes).
std::string kafka_replay_topic(std::string_view original_route);

}  // namespace sagaflow::brokers
