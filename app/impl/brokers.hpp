#pragma once
// The broker side of a process, chosen by SAGAFLOW_BROKER: a Sink (RabbitSink / KafkaSink) and
// a Source (RabbitSource on a queue / KafkaSource in a consumer group) for one of the two
// consuming roles of CONTRACT.md section 6. The rest of the program sees only Source and Sink.
#include <memory>
#include <string>

#include "consumers/source.hpp"
#include "core/config.hpp"
#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow::store {
class DeadLetterIndex;
}

namespace sagaflow::app {

enum class Role : std::uint8_t {
  saga,          // queue sagaflow.saga / group sagaflow-saga on sagaflow.events
  participants,  // queue sagaflow.participants / group sagaflow-participants on sagaflow.commands
  deliver,       // queue sagaflow.deliveries / group sagaflow-deliver on sagaflow.events
};

std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const Config& config, const std::string& name);

// Retry and dead-letter copies go through `copies` (not owned; started by the caller);
// `on_dead_lettered` hears of each dead letter the broker confirmed (the dead-letter index).
std::unique_ptr<Source> make_source(uv_loop_s* loop, const Config& config, Role role, Sink& copies,
                                    const std::string& name,
                                    DeadLetterListener on_dead_lettered = {});

// A listener that records each dead letter in the index (store/dead_letters.hpp), logging a
// failed write (the dead letter is in the broker either way).
DeadLetterListener index_dead_letters(store::DeadLetterIndex& index);

// What the source consumes, for logs: "queue sagaflow.saga" / "group sagaflow-saga".
std::string describe_intake(const Config& config, Role role);

}  // namespace sagaflow::app
