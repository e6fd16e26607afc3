// KafkaSource's offsets: a settled record leaves its partition's window (offset_window.hpp),
// and the offsets that frees are stored (rd_kafka_offsets_store) once per loop turn; the
// auto-commit sends them every commit_interval_ms, and the revoke and the close commit them.
#include <librdkafka/rdkafka.h>

#include <optional>

#include "consumers/kafka/source_impl.hpp"
#include "core/log.hpp"

namespace sagaflow {

void KafkaSource::Impl::finish_slot(Track& t, Slot& s) {
  if (s.msg != nullptr) {
    rd_kafka_message_destroy(s.msg);
    s.msg = nullptr;
  }
  s.route = {};
  s.message_id = {};
  s.state = State::settled;
  busy_--;
  pending_--;
  t.window.settle(s);
  kick();  // store offsets, hand over more, finish a stop: on the next loop turn
}

void KafkaSource::Impl::flush_stores() {
  if (rk_ == nullptr) return;
  rd_kafka_topic_partition_list_t* list = nullptr;
  for (auto& t : tracks_) {
    const std::optional<std::int64_t> store = t->window.take_store();
    if (!store) continue;
    if (list == nullptr) list = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_add(list, t->topic.c_str(), t->partition)->offset = *store;
  }
  if (list == nullptr) return;
  const rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk_, list);
  stats_.offsets_stored++;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::debug("offsets store failed",
               {{"source", options_.name}, {"error", rd_kafka_err2str(err)}});
  }
  rd_kafka_topic_partition_list_destroy(list);
}

}  // namespace sagaflow
