#pragma once
// What the loop users read from librdkafka's statistics (statistics.interval.ms): pure text
// scanning, no librdkafka. Shared by KafkaSource and KafkaSink.
#include <string_view>

namespace sagaflow::kafka {

// True when the statistics JSON lists a real broker (source "learned" or "configured", not
// librdkafka's "internal" or "logical" ones) in state "UP". librdkafka writes each broker as
// {"name":..,"nodeid":..,"nodename":..,"source":"..","state":"UP",...}; whitespace after a
// colon is allowed. A truncated or foreign document is false.
bool broker_up(std::string_view statistics_json) noexcept;

}  // namespace sagaflow::kafka
