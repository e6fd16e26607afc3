#include "producers/rabbit_sink.hpp"

#include <amqp.h>

#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "clients/rabbitmq/amqp_link.hpp"
#include "clients/uv_helpers.hpp"
#include "core/log.hpp"

namespace sagaflow {

using rabbit::bytes;

RabbitSink::RabbitSink(uv_loop_s* loop, RabbitSinkOptions options) : options_(std::move(options)) {
  deferred_ = std::make_unique<clients::Deferred>(loop);
  drain_timer_ = std::make_unique<clients::Timer>(loop);
  rabbit::LinkOptions lo;
  lo.endpoint = options_.endpoint;
  lo.name = options_.name;
  lo.heartbeat_s = options_.heartbeat_s;
  lo.reconnect_min_ms = options_.reconnect_min_ms;
  lo.reconnect_max_ms = options_.reconnect_max_ms;
  rabbit::UvLink::Events ev;
  ev.setup = [](amqp_connection_state_t conn) -> Status {
    amqp_confirm_select(conn, 1);
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      return make_error(Errc::unavailable,
                        "RabbitMQ refused confirm.select: " + rabbit::reply_text(r));
    }
    return Status::success();
  };
  ev.up = [this] { on_up(); };
  ev.readable = [this] { on_readable(); };
  ev.down = [this](const Error& e) { on_down(e); };
  link_ = std::make_unique<rabbit::UvLink>(loop, std::move(lo), std::move(ev));
}

RabbitSink::~RabbitSink() {
  // Callbacks still owed are dropped with the deferred queue; the link closes its socket.
  link_.reset();
}

void RabbitSink::start() {
  link_->start();
}

bool RabbitSink::connected() const noexcept {
  return link_->usable();
}

bool RabbitSink::can_publish() const noexcept {
  return link_->usable() && !blocked_ && !stopping_ && waiting_.empty() &&
         unconfirmed_.size() < options_.window;
}

std::size_t RabbitSink::unconfirmed() const noexcept {
  return unconfirmed_.size() + waiting_.size();
}

void RabbitSink::on_state_change(std::function<void(bool)> fn) {
  on_state_ = std::move(fn);
}
void RabbitSink::on_writable(std::function<void()> fn) {
  on_writable_ = std::move(fn);
}

void RabbitSink::publish(Message message, PublishCallback done) {
  if (stopping_ || !link_->usable()) {
    const char* why = stopping_ ? "the publisher is stopping" : "not connected to RabbitMQ";
    deferred_->post([done = std::move(done), why] { done(make_error(Errc::unavailable, why)); });
    return;
  }
  if (blocked_ || !waiting_.empty() || unconfirmed_.size() >= options_.window) {
    was_writable_ = false;
    waiting_.push_back(Waiting{std::move(message), std::move(done)});
    return;
  }
  send(message, std::move(done));
  if (!can_publish()) was_writable_ = false;
}

void RabbitSink::send(Message& m, PublishCallback done) {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;  // persistent
  props.content_type = bytes(m.content_type);
  if (!m.message_id.empty()) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = bytes(m.message_id);
  }
  std::string expiration;
  if (m.expiration_ms > 0) {
    expiration = std::to_string(m.expiration_ms);
    props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = bytes(expiration);
  }
  std::vector<amqp_table_entry_t> entries;
  if (!m.headers.empty()) {
    entries.resize(m.headers.size());
    for (std::size_t i = 0; i < m.headers.size(); ++i) {
      entries[i].key = bytes(m.headers[i].key);
      if (const auto* s = std::get_if<std::string>(&m.headers[i].value)) {
        entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[i].value.value.bytes = bytes(*s);
      } else {
        entries[i].value.kind = AMQP_FIELD_KIND_I64;
        entries[i].value.value.i64 = std::get<std::int64_t>(m.headers[i].value);
      }
    }
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = amqp_table_t{static_cast<int>(entries.size()), entries.data()};
  }
  unconfirmed_.push_back(Pending{next_seq_++, std::move(done), false});
  if (Status s = link_->publish(bytes(m.exchange), bytes(m.routing_key), props, bytes(m.body));
      !s) {
    // Nothing was written: this message alone fails (the broker never counted it), the
    // connection and the other publishes go on.
    PublishCallback failed = std::move(unconfirmed_.back().done);
    unconfirmed_.pop_back();
    next_seq_--;
    deferred_->post([failed = std::move(failed), error = std::move(s).error()] { failed(error); });
  }
}

void RabbitSink::on_up() {
  next_seq_ = 1;
  blocked_ = false;
  if (on_state_) on_state_(true);
  pump();
}

void RabbitSink::on_down(const Error& error) {
  fail_all(make_error(Errc::unavailable,
                      "connection to RabbitMQ lost before the confirm: " + error.detail));
  if (on_state_) on_state_(false);
  maybe_finish_stop();
}

void RabbitSink::fail_all(const Error& error) {
  std::vector<PublishCallback> owed;
  for (auto& p : unconfirmed_) {
    if (!p.settled && p.done) owed.push_back(std::move(p.done));
  }
  for (auto& w : waiting_) owed.push_back(std::move(w.done));
  unconfirmed_.clear();
  waiting_.clear();
  for (auto& cb : owed) {
    deferred_->post([cb = std::move(cb), error] { cb(error); });
  }
}

void RabbitSink::on_readable() {
  amqp_connection_state_t conn = link_->conn();
  bool socket_read = false;
  while (link_->usable() && rabbit::worth_reading(conn, socket_read)) {
    amqp_frame_t frame;
    timeval zero{0, 0};
    const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) break;
    if (rc != AMQP_STATUS_OK) {
      link_->fail(make_error(Errc::unavailable,
                             fmt::format("RabbitMQ read failed: {}", amqp_error_string2(rc))));
      return;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;  // no mandatory publishes: no returns
    const amqp_method_t& m = frame.payload.method;
    switch (m.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* a = static_cast<const amqp_basic_ack_t*>(m.decoded);
        confirm(a->delivery_tag, a->multiple != 0, true);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* n = static_cast<const amqp_basic_nack_t*>(m.decoded);
        confirm(n->delivery_tag, n->multiple != 0, false);
        break;
      }
      case AMQP_CONNECTION_BLOCKED_METHOD:
        blocked_ = true;
        log::warn("rabbitmq blocked the publisher", {{"link", options_.name}});
        break;
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        blocked_ = false;
        log::info("rabbitmq unblocked the publisher", {{"link", options_.name}});
        break;
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* c = static_cast<const amqp_channel_close_t*>(m.decoded);
        amqp_channel_close_ok_t ok{};
        amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        link_->fail(make_error(Errc::unavailable, fmt::format("channel closed by RabbitMQ: {}",
                                                              rabbit::view(c->reply_text))));
        return;
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto* c = static_cast<const amqp_connection_close_t*>(m.decoded);
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        link_->fail(make_error(Errc::unavailable, fmt::format("connection closed by RabbitMQ: {}",
                                                              rabbit::view(c->reply_text))));
        return;
      }
      default:
        break;
    }
  }
  if (link_->usable()) amqp_maybe_release_buffers(conn);
  pump();
}

void RabbitSink::confirm(std::uint64_t tag, bool multiple, bool ack) {
  if (unconfirmed_.empty()) return;
  const Status status = ack ? Status::success()
                            : Status(make_error(Errc::unavailable, "RabbitMQ nacked the message"));
  std::vector<PublishCallback> done;
  const std::uint64_t front = unconfirmed_.front().seq;
  if (multiple) {
    for (auto& p : unconfirmed_) {
      if (p.seq > tag) break;
      if (!p.settled) {
        p.settled = true;
        done.push_back(std::move(p.done));
      }
    }
  } else if (tag >= front && tag - front < unconfirmed_.size()) {
    Pending& p = unconfirmed_[tag - front];
    if (!p.settled) {
      p.settled = true;
      done.push_back(std::move(p.done));
    }
  }
  while (!unconfirmed_.empty() && unconfirmed_.front().settled) unconfirmed_.pop_front();
  for (auto& cb : done) {
    if (cb) cb(status);
  }
  maybe_finish_stop();
}

void RabbitSink::pump() {
  while (!waiting_.empty() && link_->usable() && !blocked_ &&
         unconfirmed_.size() < options_.window) {
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    send(w.message, std::move(w.done));
  }
  if (!was_writable_ && can_publish()) {
    was_writable_ = true;
    if (on_writable_) on_writable_();
  }
}

void RabbitSink::stop(std::function<void()> on_stopped) noexcept {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  if (!link_->usable()) fail_all(make_error(Errc::unavailable, "the publisher stopped"));
  if (unconfirmed_.empty() && waiting_.empty()) {
    finish_stop();
    return;
  }
  drain_timer_->start(options_.drain_timeout_ms, [this] {
    fail_all(make_error(Errc::unavailable, "the publisher stopped before the confirm"));
    finish_stop();
  });
}

void RabbitSink::maybe_finish_stop() {
  if (stopping_ && !stopped_ && unconfirmed_.empty() && waiting_.empty()) finish_stop();
}

void RabbitSink::finish_stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  drain_timer_->stop();
  link_->stop();
  if (on_stopped_) deferred_->post(std::move(on_stopped_));
}

}  // namespace sagaflow
