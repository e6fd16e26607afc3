// KafkaSource's retry and dead-letter copies: settle() with a copy verdict builds the copy
// (consumers/copy_plan.hpp) and hands it to the copy publisher (consumers/copy_publisher.hpp),
// shared with RabbitSource, which settles the original once the copy is confirmed.
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <utility>

#include "consumers/copy_plan.hpp"
#include "consumers/kafka/record_headers.hpp"
#include "consumers/kafka/source_impl.hpp"
#include "core/log.hpp"

namespace sagaflow {

using kafka_source::header_of;
using kafka_source::is_rewritten_header;
using kafka_source::unix_ms;

void KafkaSource::Impl::settle(std::uint64_t tag, Verdict verdict) {
  if (auto it = abandoned_.find(tag); it != abandoned_.end()) {
    // Its partition was revoked: the new owner gets the record again.
    rd_kafka_message_destroy(it->second);
    abandoned_.erase(it);
    log::debug("settled a delivery of a revoked partition; its new owner gets it again",
               {{"source", options_.name}});
    kick();
    return;
  }
  Track* t = nullptr;
  Slot* s = find(tag, &t);
  if (s == nullptr || s->state != State::handed) {
    log::debug("settle of an unknown, revoked or already settled delivery",
               {{"source", options_.name}, {"tag", tag}});
    return;
  }
  verdict = effective_verdict(options_.retry, s->attempt, std::move(verdict));
  if (verdict.kind == Verdict::Kind::ack) {
    stats_.acked++;
    finish_slot(*t, *s);
    return;
  }

  Message m = build_copy(*s);
  const std::string route(s->route);
  if (verdict.kind == Verdict::Kind::retry) {
    const RetryPlan plan = plan_retry(options_.retry, s->attempt, next_random());
    m.exchange = retry_topic_;
    add_retry_headers(m.headers, s->attempt, route);
    m.headers.push_back(Header{std::string(topology::kHeaderNotBefore), unix_ms() + plan.delay_ms});
    stats_.retried++;
    log::debug("retrying delivery", {{"source", options_.name},
                                     {"message_id", s->message_id},
                                     {"attempt", s->attempt},
                                     {"delay_ms", plan.delay_ms},
                                     {"reason", reason_code(verdict.reason)}});
  } else {
    m.exchange = options_.dead_letter_topic;
    add_dead_letter_headers(m.headers, verdict, s->attempt, route);
    stats_.dead_lettered++;
    log::info("dead-lettering delivery", {{"source", options_.name},
                                          {"message_id", s->message_id},
                                          {"reason", reason_code(verdict.reason)},
                                          {"detail", verdict.detail},
                                          {"attempts", s->attempt}});
  }
  // The copy owns its bytes: the record is no longer needed.
  s->state = State::publishing;
  s->route = {};
  s->message_id = {};
  rd_kafka_message_destroy(s->msg);
  s->msg = nullptr;
  copies_.publish(tag, std::move(m));
}

Message KafkaSource::Impl::build_copy(const Slot& s) const {
  Message m;
  const rd_kafka_message_t* r = s.msg;
  if (r->payload != nullptr) m.body.assign(static_cast<const char*>(r->payload), r->len);
  if (r->key != nullptr) m.key.assign(static_cast<const char*>(r->key), r->key_len);
  m.message_id.assign(s.message_id);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(r, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return m;
  bool found = false;
  const std::string_view type = header_of(hdrs, topology::kKafkaHeaderType, &found);
  m.routing_key.assign(type);
  const std::string_view ct = header_of(hdrs, topology::kKafkaHeaderContentType, &found);
  if (found) m.content_type.assign(ct);
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    if (is_rewritten_header(name)) continue;
    m.headers.push_back(Header{
        std::string(name),
        value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string()});
  }
  return m;
}

CopyPublisherOptions KafkaSource::Impl::copy_options() const {
  CopyPublisherOptions o;
  o.name = options_.name;
  o.dead_letter_destination = options_.dead_letter_topic;
  o.dead_letter_where = options_.dead_letter_topic;
  o.on_dead_lettered = options_.on_dead_lettered;
  o.republish_delay_ms = options_.republish_delay_ms;
  return o;
}

CopyPublisher::Events KafkaSource::Impl::copy_events() {
  CopyPublisher::Events e;
  e.wanted = [this](std::uint64_t tag) {  // revoked: the new owner redoes it
    const Slot* s = find(tag);
    return s != nullptr && s->state == State::publishing;
  };
  e.settled = [this](std::uint64_t tag) {
    Track* t = nullptr;
    Slot* s = find(tag, &t);
    finish_slot(*t, *s);
  };
  e.too_large = [this](std::uint64_t tag, const Message& refused, bool given_up) {
    Track* t = nullptr;
    Slot* s = find(tag, &t);
    if (!given_up) {
      log::error(
          "retry / dead-letter copy too large for the broker; dead-lettering it "
          "without its body",
          {{"source", options_.name},
           {"topic", t->topic},
           {"partition", t->partition},
           {"offset", s->offset},
           {"message_id", refused.message_id},
           {"bytes", static_cast<std::uint64_t>(refused.body.size())}});
      if (refused.exchange != options_.dead_letter_topic) stats_.dead_lettered++;  // was a retry
      return;
    }
    log::error(
        "dead letter too large for the broker even without its body; left in the "
        "source topic",
        {{"source", options_.name},
         {"topic", t->topic},
         {"partition", t->partition},
         {"offset", s->offset},
         {"message_id", refused.message_id}});
  };
  return e;
}

}  // namespace sagaflow
