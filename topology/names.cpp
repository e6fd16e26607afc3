#include "topology/names.hpp"

namespace sagaflow::topology {

std::string retry_tier_name(std::int64_t ms) {
  std::string suffix;
  if (ms >= 60000 && ms % 60000 == 0) {
    suffix = std::to_string(ms / 60000) + "m";
  } else if (ms >= 1000 && ms % 1000 == 0) {
    suffix = std::to_string(ms / 1000) + "s";
  } else {
    suffix = std::to_string(ms) + "ms";
  }
  return "sagaflow.retry." + suffix;
}

std::string kafka_retry_topic(std::string_view group) {
  std::string topic(kRetryTopicPrefix);
  topic.append(group);
  return topic;
}

}  // namespace sagaflow::topology
