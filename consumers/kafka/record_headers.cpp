#include "consumers/kafka/record_headers.hpp"

#include <algorithm>

#include "consumers/copy_plan.hpp"
#include "topology/names.hpp"

namespace sagaflow::kafka_source {

std::int64_t parse_int(std::string_view s, std::int64_t fallback) noexcept {
  if (s.empty() || s.size() > 18) return fallback;
  std::size_t i = 0;
  const bool neg = s[0] == '-';
  if (neg) i = 1;
  if (i == s.size()) return fallback;
  std::int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return fallback;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

std::string_view header_of(rd_kafka_headers_t* hdrs, std::string_view name, bool* found) {
  if (found != nullptr) *found = false;
  if (hdrs == nullptr) return {};
  const void* value = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, name.data(), &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return {};
  }
  if (found != nullptr) *found = true;
  if (value == nullptr) return {};
  return {static_cast<const char*>(value), size};
}

bool is_rewritten_header(std::string_view name) {
  return is_copy_header(name) || name == topology::kKafkaHeaderType ||
         name == topology::kKafkaHeaderMessageId || name == topology::kKafkaHeaderContentType;
}

RecordFields read_fields(const rd_kafka_message_t* m, bool retry) {
  RecordFields f;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = nullptr;
  f.message_id = header_of(hdrs, topology::kKafkaHeaderMessageId);
  f.attempt = static_cast<int>(std::clamp<std::int64_t>(
      parse_int(header_of(hdrs, topology::kHeaderAttempts), 1), 1, 1000000));
  const std::string_view original = header_of(hdrs, topology::kHeaderOriginalRoute);
  f.route = original.empty() ? std::string_view(rd_kafka_topic_name(m->rkt)) : original;
  if (retry) f.not_before = parse_int(header_of(hdrs, topology::kHeaderNotBefore), 0);
  return f;
}

}  // namespace sagaflow::kafka_source
