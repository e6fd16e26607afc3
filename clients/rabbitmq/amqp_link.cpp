#include "clients/rabbitmq/amqp_link.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "clients/rabbitmq/publish_frames.hpp"
#include "core/log.hpp"

namespace sagaflow::rabbit {
namespace {
constexpr std::size_t kFlushAt = 64 * 1024;      // publish(): write at once from this size
constexpr std::chrono::seconds kWriteBound{10};  // write_out(): the longest wait for progress
}  // namespace

Result<amqp_connection_state_t> connect_blocking(const LinkOptions& o) {
  const AmqpEndpoint& ep = o.endpoint;
  amqp_connection_state_t conn = amqp_new_connection();
  auto fail = [&](std::string detail) -> Result<amqp_connection_state_t> {
    amqp_destroy_connection(conn);
    return make_error(Errc::unavailable, std::move(detail));
  };
  if (Status s = open_socket(conn, ep, o.connect_timeout_ms); !s) return fail(s.error().detail);
  const timeval rpc{std::max(2, o.connect_timeout_ms / 1000), 0};
  amqp_set_rpc_timeout(conn, &rpc);

  // Announce connection.blocked and consumer_cancel_notify so the broker tells us.
  amqp_table_entry_t caps[2];
  caps[0].key = amqp_cstring_bytes("connection.blocked");
  caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[0].value.value.boolean = 1;
  caps[1].key = amqp_cstring_bytes("consumer_cancel_notify");
  caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[1].value.value.boolean = 1;
  amqp_table_entry_t props[2];
  props[0].key = amqp_cstring_bytes("capabilities");
  props[0].value.kind = AMQP_FIELD_KIND_TABLE;
  props[0].value.value.table = amqp_table_t{2, caps};
  props[1].key = amqp_cstring_bytes("connection_name");
  props[1].value.kind = AMQP_FIELD_KIND_UTF8;
  props[1].value.value.bytes = bytes(o.name);
  const amqp_table_t client_properties{2, props};

  if (Status s = login(conn, ep, o.heartbeat_s, &client_properties); !s)
    return fail(s.error().detail);
  if (Status s = open_channel(conn, ep); !s) return fail(s.error().detail);
  // Reads must never block the loop: make sure the socket is non-blocking (rabbitmq-c handles
  // EAGAIN by polling with the call's timeout, zero for our reads).
  const int fd = amqp_get_sockfd(conn);
  const int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return conn;
}

struct UvLink::ConnectJob {
  uv_work_t req{};
  UvLink* owner = nullptr;
  LinkOptions options;
  std::function<Status(amqp_connection_state_t)> setup;
  amqp_connection_state_t conn = nullptr;
  Error error;
};

UvLink::UvLink(uv_loop_t* loop, LinkOptions options, Events events)
    : loop_(loop),
      options_(std::move(options)),
      events_(std::move(events)),
      reconnect_timer_(loop),
      heartbeat_timer_(loop),
      end_of_turn_(loop) {
  rng_ ^= reinterpret_cast<std::uintptr_t>(this);
}

UvLink::~UvLink() {
  stopped_ = true;
  if (job_ != nullptr) job_->owner = nullptr;  // the job cleans up after itself
  job_ = nullptr;
  if (conn_ != nullptr) teardown(/*graceful=*/false);
}

void UvLink::start() {
  if (started_ || stopped_) return;
  started_ = true;
  begin_connect();
}

void UvLink::begin_connect() {
  if (stopped_ || job_ != nullptr || conn_ != nullptr) return;
  auto* job = new ConnectJob;
  job->req.data = job;
  job->owner = this;
  job->options = options_;
  job->setup = events_.setup;
  job_ = job;
  const int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<ConnectJob*>(req->data);
        auto conn = connect_blocking(j->options);
        if (!conn) {
          j->error = conn.error();
          return;
        }
        if (j->setup) {
          if (Status s = j->setup(conn.value()); !s) {
            j->error = s.error();
            amqp_destroy_connection(conn.value());
            return;
          }
        }
        j->conn = conn.value();
      },
      [](uv_work_t* req, int /*status*/) {
        auto* j = static_cast<ConnectJob*>(req->data);
        if (j->owner == nullptr) {
          if (j->conn != nullptr) {
            amqp_connection_close(j->conn, AMQP_REPLY_SUCCESS);
            amqp_destroy_connection(j->conn);
          }
          delete j;
          return;
        }
        j->owner->on_connected(j);
      });
  if (rc != 0) {
    delete job;
    job_ = nullptr;
    failures_++;
    schedule_reconnect();
  }
}

void UvLink::on_connected(ConnectJob* job) {
  std::unique_ptr<ConnectJob> owned(job);
  job_ = nullptr;
  if (stopped_) {
    if (job->conn != nullptr) {
      amqp_connection_close(job->conn, AMQP_REPLY_SUCCESS);
      amqp_destroy_connection(job->conn);
    }
    return;
  }
  if (job->conn == nullptr) {
    failures_++;
    // Log the first failure of a streak and then at powers of two, not every attempt.
    if ((failures_ & (failures_ - 1)) == 0) {
      log::warn("rabbitmq connect failed",
                {{"link", options_.name}, {"error", job->error.detail}, {"attempts", failures_}});
    }
    schedule_reconnect();
    return;
  }
  conn_ = job->conn;
  job->conn = nullptr;
  pending_ = Pending::none;
  generation_++;
  if (failures_ > 0 || generation_ > 1) {
    log::info("rabbitmq connected", {{"link", options_.name}, {"after_failures", failures_}});
  } else {
    log::debug("rabbitmq connected", {{"link", options_.name}});
  }
  failures_ = 0;
  frame_max_ = static_cast<std::size_t>(std::max(4096, amqp_get_frame_max(conn_)));
  out_.clear();
  poll_ = new uv_poll_t;
  uv_poll_init_socket(loop_, poll_, amqp_get_sockfd(conn_));
  poll_->data = this;
  reads_held_ = false;
  watch_socket();
  last_activity_ms_ = clients::now_ms(loop_);
  if (options_.heartbeat_s > 0) {
    const std::int64_t tick = std::max<std::int64_t>(250, options_.heartbeat_s * 1000 / 3);
    heartbeat_timer_.start(
        tick, [this] { on_heartbeat_tick(); }, tick);
  }
  if (events_.up) events_.up();
  // Frames may already sit in rabbitmq-c's buffer (read together with the last RPC reply).
  if (conn_ != nullptr) dispatch_readable();
}

void UvLink::watch_socket() {
  uv_poll_start(poll_, reads_held_ ? UV_DISCONNECT : UV_READABLE | UV_DISCONNECT,
                [](uv_poll_t* h, int status, int events) {
                  auto* self = static_cast<UvLink*>(h->data);
                  if (self == nullptr) return;
                  if (status < 0) {
                    // libuv reports POLLERR (a reset connection, for one) as UV_EBADF.
                    self->fail(make_error(
                        Errc::unavailable,
                        status == UV_EBADF ? std::string("connection reset (socket error)")
                                           : fmt::format("socket error: {}", uv_strerror(status))));
                    return;
                  }
                  self->last_activity_ms_ = clients::now_ms(self->loop_);
                  if (!self->reads_held_) {
                    self->dispatch_readable();
                  } else if ((events & UV_DISCONNECT) != 0) {
                    self->fail(make_error(Errc::unavailable, "connection closed by RabbitMQ"));
                  }
                });
}

void UvLink::hold_reads(bool hold) noexcept {
  if (hold == reads_held_) return;
  reads_held_ = hold;
  last_activity_ms_ = clients::now_ms(loop_);  // silence while held is ours, not the broker's
  if (poll_ != nullptr) watch_socket();
}

void UvLink::on_heartbeat_tick() {
  if (conn_ == nullptr) return;
  if (reads_held_) {
    // Not reading: rabbitmq-c sends its heartbeats only while it reads, so send one here,
    // and do not count the unread socket as the broker's silence.
    amqp_frame_t beat{};
    beat.frame_type = AMQP_FRAME_HEARTBEAT;
    beat.channel = 0;
    if (amqp_send_frame(conn_, &beat) != AMQP_STATUS_OK) {
      fail(make_error(Errc::unavailable, "heartbeat to RabbitMQ failed"));
    }
    last_activity_ms_ = clients::now_ms(loop_);
    return;
  }
  if (clients::now_ms(loop_) - last_activity_ms_ > 2LL * options_.heartbeat_s * 1000 + 1000) {
    fail(make_error(Errc::unavailable,
                    fmt::format("no heartbeat from RabbitMQ for {} s", 2 * options_.heartbeat_s)));
    return;
  }
  dispatch_readable();  // lets rabbitmq-c send its heartbeat when due
}

void UvLink::dispatch_readable() {
  if (conn_ == nullptr || pending_ != Pending::none) return;
  depth_++;
  if (events_.readable) events_.readable();
  depth_--;
  if (depth_ == 0 && pending_ != Pending::none && conn_ != nullptr) {
    const bool graceful = pending_ == Pending::stop;
    Error error = std::move(pending_error_);
    teardown(graceful);
    if (!graceful) {
      if (events_.down) events_.down(error);
      schedule_reconnect();
    }
  }
}

void UvLink::fail(Error error) noexcept {
  if (conn_ == nullptr || pending_ != Pending::none) return;
  log::warn("rabbitmq connection lost", {{"link", options_.name}, {"error", error.detail}});
  if (depth_ > 0) {
    pending_ = Pending::fail;
    pending_error_ = std::move(error);
    return;
  }
  pending_ = Pending::fail;
  teardown(false);
  if (events_.down) events_.down(error);
  schedule_reconnect();
}

void UvLink::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  reconnect_timer_.stop();
  if (job_ != nullptr) {
    job_->owner = nullptr;
    job_ = nullptr;
  }
  if (conn_ == nullptr) return;
  if (depth_ > 0) {
    if (pending_ == Pending::none) pending_ = Pending::stop;
    return;
  }
  teardown(true);
}

Status UvLink::publish(amqp_bytes_t exchange, amqp_bytes_t routing_key,
                       const amqp_basic_properties_t& props, amqp_bytes_t body) {
  if (!usable()) return make_error(Errc::unavailable, "not connected to RabbitMQ");
  const bool first = out_.empty();
  if (Status s = append_publish(out_, 1, frame_max_, exchange, routing_key, props, body); !s) {
    return s;
  }
  if (out_.size() >= kFlushAt) {
    flush();
  } else if (first) {
    end_of_turn_.arm([this] { flush(); });
  }
  return {};
}

void UvLink::flush() noexcept {
  if (Status s = write_out(); !s) fail(s.error());
}

Status UvLink::write_out() noexcept {
  if (conn_ == nullptr) out_.clear();
  if (out_.empty()) return {};
  const int fd = amqp_get_sockfd(conn_);
  auto deadline = std::chrono::steady_clock::now() + kWriteBound;
  std::size_t done = 0;
  Status result;
  while (done < out_.size()) {
    const ssize_t n = ::send(fd, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      deadline = std::chrono::steady_clock::now() + kWriteBound;  // the bound is on no progress
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The socket's buffer is full: wait for room (the broker reads slowly, or has blocked us).
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLOUT, 0};
      const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready > 0 || (ready < 0 && errno == EINTR)) continue;
      result = make_error(Errc::unavailable, fmt::format("RabbitMQ took nothing written for {} s",
                                                         kWriteBound.count()));
      break;
    }
    result = make_error(Errc::unavailable,
                        fmt::format("write to RabbitMQ failed: {}",
                                    n == 0 ? "connection closed" : std::strerror(errno)));
    break;
  }
  out_.clear();
  if (out_.capacity() > 4 * kFlushAt) std::string().swap(out_);  // not kept for a large body
  return result;
}

void UvLink::teardown(bool graceful) {
  // A graceful close writes the turn's publishes first (if that fails, the stream may end
  // inside a frame: no connection.close then); a failed connection drops them (their confirms
  // never come: the owner fails them when told the link is down).
  if (graceful && !write_out()) graceful = false;
  out_.clear();
  heartbeat_timer_.stop();
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);  // removes the fd from epoll before the socket is closed
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  amqp_connection_state_t conn = conn_;
  conn_ = nullptr;
  if (graceful) {
    // Waits (bounded by the RPC timeout) for close-ok, so the acks written just before are
    // processed by the broker and nothing is reset.
    const timeval rpc{2, 0};
    amqp_set_rpc_timeout(conn, &rpc);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn);
  pending_ = Pending::none;
}

void UvLink::schedule_reconnect() {
  if (stopped_) return;
  const int n = std::min(failures_, 16);
  std::int64_t delay = options_.reconnect_min_ms << std::min(n, 20);
  delay = std::min(delay, options_.reconnect_max_ms);
  // +-20 % jitter (xorshift), so a fleet of workers does not reconnect in lockstep.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const std::int64_t span = delay / 5;
  if (span > 0)
    delay += static_cast<std::int64_t>(rng_ % static_cast<std::uint64_t>(2 * span + 1)) - span;
  reconnect_timer_.start(delay, [this] { begin_connect(); });
}

}  // namespace sagaflow::rabbit
