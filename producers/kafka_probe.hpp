#pragma once
// A blocking reachability check of a Kafka cluster for the command-line tools: asks for the
// cluster's metadata within `timeout_ms`. An error is one line saying what to check.
#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace sagaflow {

Status probe_kafka(const std::string& brokers, std::int64_t timeout_ms = 5000);

}  // namespace sagaflow
