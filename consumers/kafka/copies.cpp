// KafkaSource's retry and dead-letter copies: settle() with a copy verdict builds the copy
// (consumers/copy_plan.hpp), publishes it through the copies sink, settles the original once
// it is confirmed, and publishes again what was not. Moved unchanged from kafka_source.cpp.
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
  publish_copy(tag, std::make_shared<Message>(std::move(m)));
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

void KafkaSource::Impl::publish_copy(std::uint64_t tag, std::shared_ptr<Message> keep) {
  std::weak_ptr<int> alive = alive_;
  copies_.publish(Message(*keep), [this, alive, tag, keep](Status st) {
    if (alive.expired()) return;
    Track* t = nullptr;
    Slot* s = find(tag, &t);
    if (s == nullptr || s->state != State::publishing) return;  // revoked: the new owner redoes it
    if (st) {
      if (options_.on_dead_lettered && keep->exchange == options_.dead_letter_topic) {
        if (auto note = dead_letter_note(*keep, options_.dead_letter_topic))
          options_.on_dead_lettered(*note);
      }
      finish_slot(*t, *s);
      return;
    }
    if (st.error().code == Errc::too_large) {
      // The broker will never take it (record larger than its limit, with our headers): do not
      // pin the partition. It becomes a dead letter without its body (size and SHA-256 kept);
      // only if even that is refused is it dropped, logged with where the original still is.
      if (!keep->body.empty()) {
        log::error(
            "retry / dead-letter copy too large for the broker; dead-lettering it "
            "without its body",
            {{"source", options_.name},
             {"topic", t->topic},
             {"partition", t->partition},
             {"offset", s->offset},
             {"message_id", keep->message_id},
             {"bytes", static_cast<std::uint64_t>(keep->body.size())}});
        if (keep->exchange != options_.dead_letter_topic) stats_.dead_lettered++;  // was a retry
        publish_copy(tag,
                     std::make_shared<Message>(without_body(*keep, options_.dead_letter_topic)));
        return;
      }
      log::error(
          "dead letter too large for the broker even without its body; left in the "
          "source topic",
          {{"source", options_.name},
           {"topic", t->topic},
           {"partition", t->partition},
           {"offset", s->offset},
           {"message_id", keep->message_id}});
      finish_slot(*t, *s);
      return;
    }
    log::warn("retry / dead-letter copy not confirmed; publishing it again",
              {{"source", options_.name}, {"error", st.error().detail}});
    republish_.push_back(
        Republish{tag, clients::now_ms(loop_) + options_.republish_delay_ms, keep});
    if (!republish_timer_.active()) {
      republish_timer_.start(options_.republish_delay_ms, [this] { run_republish(); });
    }
  });
}

void KafkaSource::Impl::run_republish() {
  const std::int64_t now = clients::now_ms(loop_);
  while (!republish_.empty() && republish_.front().due_ms <= now) {
    Republish r = std::move(republish_.front());
    republish_.pop_front();
    Slot* s = find(r.tag);
    if (s == nullptr || s->state != State::publishing) continue;
    publish_copy(r.tag, std::move(r.message));
  }
  if (!republish_.empty()) {
    republish_timer_.start(std::max<std::int64_t>(1, republish_.front().due_ms - now),
                           [this] { run_republish(); });
  }
}

}  // namespace sagaflow
