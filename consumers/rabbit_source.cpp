#include "consumers/rabbit_source.hpp"

#include <amqp.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "clients/rabbitmq/amqp_link.hpp"
#include "clients/uv_helpers.hpp"
#include "consumers/copy_plan.hpp"
#include "consumers/copy_publisher.hpp"
#include "core/log.hpp"

namespace sagaflow {
namespace {

using rabbit::bytes;
using rabbit::view;

constexpr int kTagBits = 40;  // exposed tag = generation << 40 | broker delivery tag
constexpr std::uint64_t kTagMask = (std::uint64_t{1} << kTagBits) - 1;

std::uint64_t expose(std::uint64_t generation, std::uint64_t amqp_tag) {
  return (generation << kTagBits) | amqp_tag;
}

// An integer header (any AMQP integer kind, or a decimal string); fallback if absent or odd.
std::int64_t int_value(const amqp_field_value_t& v, std::int64_t fallback) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_I8:
      return v.value.i8;
    case AMQP_FIELD_KIND_U8:
      return v.value.u8;
    case AMQP_FIELD_KIND_I16:
      return v.value.i16;
    case AMQP_FIELD_KIND_U16:
      return v.value.u16;
    case AMQP_FIELD_KIND_I32:
      return v.value.i32;
    case AMQP_FIELD_KIND_U32:
      return v.value.u32;
    case AMQP_FIELD_KIND_I64:
      return v.value.i64;
    case AMQP_FIELD_KIND_U64:
      return static_cast<std::int64_t>(v.value.u64);
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
      const std::string_view s = view(v.value.bytes);
      if (s.empty() || s.size() > 9) return fallback;
      std::int64_t n = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return fallback;
        n = n * 10 + (c - '0');
      }
      return n;
    }
    default:
      return fallback;
  }
}

}  // namespace

RabbitSource::RabbitSource(uv_loop_s* loop, RabbitSourceOptions options, Sink& copies)
    : loop_(loop), options_(std::move(options)) {
  CopyPublisherOptions co;
  co.name = options_.name;
  co.log_key = "link";
  co.dead_letter_destination = options_.dead_letter_exchange;
  co.dead_letter_where = std::string(topology::kDeadQueue);
  co.on_dead_lettered = options_.on_dead_lettered;
  co.republish_delay_ms = options_.republish_delay_ms;
  co.keep_refused_originals = true;  // an ack deletes the original
  CopyPublisher::Events ce;
  ce.wanted = [this](std::uint64_t tag) {
    if ((tag >> kTagBits) != generation_ || !link_->usable()) return false;
    const Inflight* e = find(tag & kTagMask);
    return e != nullptr && e->state == State::publishing;
  };
  ce.settled = [this](std::uint64_t tag) {
    if (Inflight* e = find(tag & kTagMask)) mark_ack_ready(*e);
    maybe_finish_stop();
  };
  ce.too_large = [this](std::uint64_t tag, const Message& refused, bool given_up) {
    too_large_copy(tag & kTagMask, refused, given_up);
  };
  copies_ = std::make_unique<CopyPublisher>(loop, copies, std::move(co), std::move(ce));
  rng_ = options_.jitter_seed != 0 ? options_.jitter_seed
                                   : (std::random_device{}() | 1ULL) << 1 | 1ULL;
  deferred_ = std::make_unique<clients::Deferred>(loop);
  drain_timer_ = std::make_unique<clients::Timer>(loop);

  rabbit::LinkOptions lo;
  lo.endpoint = options_.endpoint;
  lo.name = options_.name;
  lo.heartbeat_s = options_.heartbeat_s;
  lo.reconnect_min_ms = options_.reconnect_min_ms;
  lo.reconnect_max_ms = options_.reconnect_max_ms;
  rabbit::UvLink::Events ev;
  ev.setup = [this, queue = options_.queue,
              prefetch = options_.prefetch](amqp_connection_state_t conn) -> Status {
    amqp_basic_qos(conn, 1, 0, static_cast<std::uint16_t>(std::clamp(prefetch, 1, 65535)), 0);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      return make_error(Errc::unavailable, "RabbitMQ refused basic.qos: " + rabbit::reply_text(r));
    }
    amqp_basic_consume_ok_t* ok =
        amqp_basic_consume(conn, 1, bytes(queue), amqp_empty_bytes, /*no_local=*/0, /*no_ack=*/0,
                           /*exclusive=*/0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (ok == nullptr || r.reply_type != AMQP_RESPONSE_NORMAL) {
      return make_error(Errc::unavailable, fmt::format("cannot consume from queue '{}': {}", queue,
                                                       rabbit::reply_text(r)));
    }
    // Read on the loop thread only after the work's completion callback (happens-after).
    consumer_tag_.assign(static_cast<const char*>(ok->consumer_tag.bytes), ok->consumer_tag.len);
    return Status::success();
  };
  ev.up = [this] { on_up(); };
  ev.readable = [this] { on_readable(); };
  ev.down = [this](const Error& e) { on_down(e); };
  link_ = std::make_unique<rabbit::UvLink>(loop, std::move(lo), std::move(ev));
}

RabbitSource::~RabbitSource() {
  alive_.reset();
  copies_.reset();  // before the link its callbacks ask about
  link_.reset();    // closes the consumer connection: unacked deliveries go back to the queue
}

bool RabbitSource::connected() const noexcept {
  return link_->usable();
}

void RabbitSource::start(Handler handler) {
  if (started_) return;
  started_ = true;
  handler_ = std::move(handler);
  link_->start();
}

void RabbitSource::notify_state() {
  const bool now = connected();
  if (now == reported_connected_) return;
  reported_connected_ = now;
  if (on_state_) on_state_(now);
}

void RabbitSource::pause() noexcept {
  paused_ = true;
}

void RabbitSource::resume() noexcept {
  if (!paused_) return;
  paused_ = false;
  if (link_->usable()) deferred_->post([this] { dispatch(); });
}

double RabbitSource::next_random() noexcept {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<double>(rng_ >> 11) / static_cast<double>(std::uint64_t{1} << 53);
}

void RabbitSource::on_up() {
  generation_ = link_->generation();
  if (generation_ > 1) stats_.reconnects++;
  window_.clear();
  window_bytes_ = 0;
  last_tag_ = 0;
  next_dispatch_ = 1;
  busy_ = 0;
  ack_ready_ = 0;
  reads_held_ = false;
  assembly_ = Assembly::idle;
  notify_state();
  if (stopping_) finish_stop();  // came up while stopping: nothing to drain
}

void RabbitSource::on_down(const Error& /*error*/) {
  // Every outstanding delivery goes back to the broker; settling them later is a no-op.
  window_.clear();
  window_bytes_ = 0;
  busy_ = 0;
  ack_ready_ = 0;
  reads_held_ = false;
  assembly_ = Assembly::idle;
  notify_state();
  if (stopping_) finish_stop();
}

bool RabbitSource::over_budget() const noexcept {
  return !window_.empty() && window_bytes_ >= options_.max_bytes_in_flight;
}

void RabbitSource::on_readable() {
  amqp_connection_state_t conn = link_->conn();
  bool socket_read = false;
  while (link_->usable()) {
    // At the byte budget, between deliveries: leave the rest in the socket until acks free
    // room (flush_acks reads again). Frames already in rabbitmq-c's buffer wait there too.
    if (assembly_ == Assembly::idle && over_budget()) {
      if (!reads_held_) {
        reads_held_ = true;
        stats_.read_holds++;
        link_->hold_reads(true);
        log::debug("reads held at the byte budget",
                   {{"link", options_.name},
                    {"bytes", static_cast<std::uint64_t>(window_bytes_)},
                    {"deliveries", static_cast<std::uint64_t>(window_.size())}});
      }
      break;
    }
    if (!rabbit::worth_reading(conn, socket_read)) break;
    amqp_frame_t frame;
    timeval zero{0, 0};
    const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) break;
    if (rc != AMQP_STATUS_OK) {
      link_->fail(make_error(Errc::unavailable,
                             fmt::format("RabbitMQ read failed: {}", amqp_error_string2(rc))));
      return;
    }
    switch (frame.frame_type) {
      case AMQP_FRAME_METHOD: {
        const amqp_method_t& m = frame.payload.method;
        if (m.id == AMQP_BASIC_DELIVER_METHOD) {
          const auto* d = static_cast<const amqp_basic_deliver_t*>(m.decoded);
          incoming_ = Inflight{};
          incoming_.amqp_tag = d->delivery_tag;
          incoming_.redelivered = d->redelivered != 0;
          incoming_.routing_key.assign(view(d->routing_key));
          assembly_ = Assembly::want_header;
        } else if (m.id == AMQP_BASIC_CANCEL_METHOD) {
          link_->fail(make_error(
              Errc::unavailable,
              fmt::format("RabbitMQ cancelled the consumer of queue '{}'", options_.queue)));
          return;
        } else if (m.id == AMQP_CHANNEL_CLOSE_METHOD) {
          const auto* c = static_cast<const amqp_channel_close_t*>(m.decoded);
          const std::string text(view(c->reply_text));
          amqp_channel_close_ok_t ok{};
          amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
          link_->fail(make_error(Errc::unavailable, "channel closed by RabbitMQ: " + text));
          return;
        } else if (m.id == AMQP_CONNECTION_CLOSE_METHOD) {
          const auto* c = static_cast<const amqp_connection_close_t*>(m.decoded);
          const std::string text(view(c->reply_text));
          amqp_connection_close_ok_t ok{};
          amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
          link_->fail(make_error(Errc::unavailable, "connection closed by RabbitMQ: " + text));
          return;
        }
        break;  // basic.cancel-ok and others: nothing to do
      }
      case AMQP_FRAME_HEADER:
        if (assembly_ == Assembly::want_header) {
          on_header(frame.payload.properties.decoded, frame.payload.properties.body_size);
        }
        break;
      case AMQP_FRAME_BODY:
        if (assembly_ == Assembly::want_body) {
          incoming_.body.append(static_cast<const char*>(frame.payload.body_fragment.bytes),
                                frame.payload.body_fragment.len);
          window_bytes_ += frame.payload.body_fragment.len;
          if (incoming_.body.size() >= body_expected_) complete_delivery();
        }
        break;
      default:
        break;
    }
  }
  if (!link_->usable()) return;
  amqp_maybe_release_buffers(conn);  // every frame was copied out above
  dispatch();
  flush_acks();
}

void RabbitSource::on_header(const void* properties, std::uint64_t body_size) {
  const auto* p = static_cast<const amqp_basic_properties_t*>(properties);
  if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0)
    incoming_.message_id.assign(view(p->message_id));
  if ((p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0)
    incoming_.content_type.assign(view(p->content_type));
  if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
    for (int i = 0; i < p->headers.num_entries; ++i) {
      const amqp_table_entry_t& h = p->headers.entries[i];
      const std::string_view key = view(h.key);
      if (key == topology::kHeaderAttempts) {
        incoming_.attempt =
            static_cast<int>(std::clamp<std::int64_t>(int_value(h.value, 1), 1, 1000000));
      } else if (key == topology::kHeaderOriginalRoute) {
        if (h.value.kind == AMQP_FIELD_KIND_UTF8 || h.value.kind == AMQP_FIELD_KIND_BYTES) {
          incoming_.original_route.assign(view(h.value.value.bytes));
        }
      } else if (is_copy_header(key)) {
        // Written again on a dead-letter copy; not carried over from an earlier one.
      } else if (h.value.kind == AMQP_FIELD_KIND_UTF8 || h.value.kind == AMQP_FIELD_KIND_BYTES) {
        incoming_.extra_headers.push_back(
            Header{std::string(key), std::string(view(h.value.value.bytes))});
      } else if (h.value.kind != AMQP_FIELD_KIND_TABLE && h.value.kind != AMQP_FIELD_KIND_ARRAY &&
                 h.value.kind != AMQP_FIELD_KIND_VOID && h.value.kind != AMQP_FIELD_KIND_F32 &&
                 h.value.kind != AMQP_FIELD_KIND_F64 && h.value.kind != AMQP_FIELD_KIND_DECIMAL &&
                 h.value.kind != AMQP_FIELD_KIND_BOOLEAN &&
                 h.value.kind != AMQP_FIELD_KIND_TIMESTAMP) {
        incoming_.extra_headers.push_back(Header{std::string(key), int_value(h.value, 0)});
      }
    }
  }
  body_expected_ = body_size;
  incoming_.body.reserve(body_size);
  assembly_ = Assembly::want_body;
  if (body_size == 0) complete_delivery();
}

void RabbitSource::complete_delivery() {
  assembly_ = Assembly::idle;
  // Tags of one channel are consecutive; dispatch walks them one by one.
  if (last_tag_ != 0 && incoming_.amqp_tag != last_tag_ + 1) {
    link_->fail(make_error(Errc::internal, fmt::format("unexpected delivery tag {} after {}",
                                                       incoming_.amqp_tag, last_tag_)));
    return;
  }
  if (last_tag_ == 0) next_dispatch_ = incoming_.amqp_tag;
  last_tag_ = incoming_.amqp_tag;
  incoming_.state = State::held;
  incoming_.bytes = incoming_.body.size();
  const std::uint64_t tag = incoming_.amqp_tag;
  window_.emplace_hint(window_.end(), tag, std::move(incoming_));
  incoming_ = Inflight{};
  stats_.delivered++;
}

RabbitSource::Inflight* RabbitSource::find(std::uint64_t amqp_tag) {
  auto it = window_.find(amqp_tag);
  return it == window_.end() ? nullptr : &it->second;
}

void RabbitSource::dispatch() {
  const std::uint64_t gen = generation_;
  while (!paused_ && !stopping_ && link_->usable() && gen == generation_) {
    Inflight* e = find(next_dispatch_);
    if (e == nullptr || e->state != State::held) break;
    next_dispatch_++;
    e->state = State::handed;
    busy_++;
    Delivery d;
    d.tag = expose(gen, e->amqp_tag);
    d.body = e->body;
    d.routing_key = e->original_route.empty() ? std::string_view(e->routing_key)
                                              : std::string_view(e->original_route);
    d.message_id = e->message_id;
    d.attempt = e->attempt;
    d.redelivered = e->redelivered;
    handler_(d);  // may settle, pause, stop; e may be gone afterwards
  }
}

void RabbitSource::mark_ack_ready(Inflight& e) {
  e.state = State::ack_ready;
  busy_--;
  ack_ready_++;
  schedule_flush();
}

void RabbitSource::settle(std::uint64_t tag, Verdict verdict) {
  const std::uint64_t gen = tag >> kTagBits;
  const std::uint64_t amqp_tag = tag & kTagMask;
  if (gen != generation_ || !link_->usable()) {
    log::debug("settled a delivery of a lost connection; the broker gives it again",
               {{"link", options_.name}, {"tag", amqp_tag}});
    return;
  }
  Inflight* e = find(amqp_tag);
  if (e == nullptr || e->state != State::handed) {
    log::warn("settle of an unknown or already settled delivery",
              {{"link", options_.name}, {"tag", amqp_tag}});
    return;
  }
  verdict = effective_verdict(options_.retry, e->attempt, std::move(verdict));
  if (verdict.kind == Verdict::Kind::ack) {
    stats_.acked++;
    mark_ack_ready(*e);
    maybe_finish_stop();
    return;
  }

  Message m;
  m.message_id = e->message_id;
  m.body = std::move(e->body);  // not needed here any more (a re-publish keeps its own)
  m.content_type = e->content_type.empty() ? std::string(topology::kContentType) : e->content_type;
  m.headers = e->extra_headers;
  const std::string& route = e->original_route.empty() ? e->routing_key : e->original_route;
  if (verdict.kind == Verdict::Kind::retry) {
    const RetryPlan plan = plan_retry(options_.retry, e->attempt, next_random());
    m.exchange = topology::retry_tier_name(plan.tier_ms);
    m.routing_key = options_.queue;
    m.expiration_ms = plan.delay_ms;
    add_retry_headers(m.headers, e->attempt, route);
    stats_.retried++;
    log::debug("retrying delivery", {{"link", options_.name},
                                     {"message_id", e->message_id},
                                     {"attempt", e->attempt},
                                     {"delay_ms", plan.delay_ms},
                                     {"reason", reason_code(verdict.reason)}});
  } else {
    m.exchange = options_.dead_letter_exchange;
    m.routing_key = route;
    add_dead_letter_headers(m.headers, verdict, e->attempt, route);
    stats_.dead_lettered++;
    log::info("dead-lettering delivery", {{"link", options_.name},
                                          {"message_id", e->message_id},
                                          {"reason", reason_code(verdict.reason)},
                                          {"detail", verdict.detail},
                                          {"attempts", e->attempt}});
  }
  e->state = State::publishing;
  copies_->publish(tag, std::move(m));
}

void RabbitSource::too_large_copy(std::uint64_t amqp_tag, const Message& refused, bool given_up) {
  if (!given_up) {
    log::error(
        "retry / dead-letter copy too large for the broker; dead-lettering it "
        "without its body",
        {{"link", options_.name},
         {"tag", amqp_tag},
         {"message_id", refused.message_id},
         {"bytes", static_cast<std::uint64_t>(refused.body.size())}});
    if (refused.exchange != options_.dead_letter_exchange) stats_.dead_lettered++;  // a retry
    return;
  }
  log::error("dead letter too large for the broker even without its body; acking the original",
             {{"link", options_.name}, {"tag", amqp_tag}, {"message_id", refused.message_id}});
}

void RabbitSource::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  std::weak_ptr<int> alive = alive_;
  deferred_->post([this, alive] {
    if (alive.expired()) return;
    flush_acks();
  });
}

void RabbitSource::flush_acks() {
  flush_scheduled_ = false;
  if (!link_->usable() || ack_ready_ == 0) return;
  amqp_connection_state_t conn = link_->conn();
  // The settled run from the oldest outstanding delivery: one multiple-ack (tags below it
  // were acked already).
  std::uint64_t last = 0;
  while (!window_.empty() && window_.begin()->second.state == State::ack_ready) {
    last = window_.begin()->first;
    ack_ready_--;
    forget(window_.begin());
  }
  if (last != 0) {
    if (amqp_basic_ack(conn, 1, last, /*multiple=*/1) != AMQP_STATUS_OK) {
      link_->fail(make_error(Errc::unavailable, "basic.ack failed"));
      return;
    }
    stats_.ack_frames++;
  }
  // Settled deliveries behind one still in progress: singly, so they hold neither prefetch
  // nor memory.
  for (auto it = window_.begin(); it != window_.end() && ack_ready_ > 0;) {
    if (it->second.state != State::ack_ready) {
      ++it;
      continue;
    }
    if (amqp_basic_ack(conn, 1, it->first, /*multiple=*/0) != AMQP_STATUS_OK) {
      link_->fail(make_error(Errc::unavailable, "basic.ack failed"));
      return;
    }
    stats_.ack_frames++;
    ack_ready_--;
    auto next = std::next(it);
    forget(it);
    it = next;
  }
  if (reads_held_ && !over_budget()) {
    reads_held_ = false;
    link_->hold_reads(false);
    std::weak_ptr<int> alive = alive_;
    deferred_->post([this, alive] {
      if (!alive.expired() && !reads_held_) link_->read_now();
    });
  }
}

void RabbitSource::forget(std::map<std::uint64_t, Inflight>::iterator it) {
  window_bytes_ -= std::min(window_bytes_, it->second.bytes);
  window_.erase(it);
}

void RabbitSource::stop(std::function<void()> on_stopped) noexcept {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  if (link_->usable() && !consumer_tag_.empty()) {
    amqp_basic_cancel_t cancel{};
    cancel.consumer_tag = bytes(consumer_tag_);
    cancel.nowait = 0;
    amqp_send_method(link_->conn(), 1, AMQP_BASIC_CANCEL_METHOD, &cancel);
  }
  log::info("draining deliveries",
            {{"link", options_.name}, {"in_flight", static_cast<std::uint64_t>(busy_)}});
  drain_timer_->start(options_.drain_timeout_ms, [this] {
    log::warn("drain timed out; unsettled deliveries go back to the broker",
              {{"link", options_.name}, {"in_flight", static_cast<std::uint64_t>(busy_)}});
    finish_stop();
  });
  maybe_finish_stop();
}

void RabbitSource::maybe_finish_stop() {
  if (stopping_ && !stopped_ && busy_ == 0) finish_stop();
}

void RabbitSource::finish_stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  drain_timer_->stop();
  copies_->clear();
  flush_acks();
  link_->stop();  // connection.close after the acks (deferred if inside a read)
  std::weak_ptr<int> alive = alive_;
  auto done = [this, alive] {
    if (alive.expired()) return;
    if (on_stopped_) {
      auto fn = std::move(on_stopped_);
      on_stopped_ = nullptr;
      fn();
    }
  };
  deferred_->post(done);
}

}  // namespace sagaflow
