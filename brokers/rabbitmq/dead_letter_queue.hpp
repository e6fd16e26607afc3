#pragma once
// One message of sagaflow.dead taken with basic.get (unacked: it goes back to the queue when
// the channel closes unless acked), for `dlq list` and the replays.
#include <cstdint>
#include <optional>
#include <string>

#include "core/result.hpp"

namespace sagaflow::rabbit {
class BlockingAmqp;
}

namespace sagaflow::brokers {

struct AmqpDeadLetter {
  std::uint64_t tag = 0;
  std::string body;
  std::string route;  // x-sagaflow-original-route, else the routing key it came with
  std::string reason;
  std::string detail;
  std::string attempts;
  std::string message_id;
  std::string id;  // x-sagaflow-dead-letter-id
};

// nullopt when the queue has nothing ready.
Result<std::optional<AmqpDeadLetter>> get_dead_letter(rabbit::BlockingAmqp& amqp);

}  // namespace sagaflow::brokers
