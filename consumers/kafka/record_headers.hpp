#pragma once
// Reading a polled record's headers: what the Delivery carries (message_id, attempt, route)
// and a retry record's not-before. Include only from .cpp files (rdkafka.h).
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <string_view>

namespace sagaflow::kafka_source {

// A decimal integer header value; fallback if absent or not a number (at most 18 characters,
// an optional leading '-').
std::int64_t parse_int(std::string_view s, std::int64_t fallback) noexcept;

// The last header `name` (a NUL-terminated literal) of a record; empty if absent.
std::string_view header_of(rd_kafka_headers_t* hdrs, std::string_view name, bool* found = nullptr);

// Headers sagaflow writes itself on a copy (never carried over from the original).
bool is_rewritten_header(std::string_view name);

struct RecordFields {
  std::string_view message_id;  // header message_id; into the record
  int attempt = 1;              // header x-sagaflow-attempts, within 1..1000000; 1 if absent
  std::string_view route;       // header x-sagaflow-original-route, else the record's topic
  std::int64_t not_before = 0;  // header x-sagaflow-not-before (unix ms), only if `retry`
};

// The views point into `m` (and its topic handle, which lives as long as the record).
RecordFields read_fields(const rd_kafka_message_t* m, bool retry);

}  // namespace sagaflow::kafka_source
