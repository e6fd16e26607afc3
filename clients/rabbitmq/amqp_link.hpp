#pragma once
// One rabbitmq-c connection driven by a libuv loop, shared by RabbitSink and RabbitSource.
//
// - Connecting (TCP, login, channel 1, then the owner's setup: confirm.select, basic.qos,
//   basic.consume...) is blocking rabbitmq-c code, so it runs on libuv's thread pool; the loop
//   never waits for a broker that is down or slow to accept.
// - Once up, the socket is watched with uv_poll; the owner's readable() drains frames with a
//   zero timeout (rabbitmq-c's socket is non-blocking), so reading never blocks the loop.
//   Writes are rabbitmq-c's blocking sends (acks, replies), or a turn's publishes in one send
//   of our own (publish()); callers bound what they write.
// - Heartbeats: a timer keeps rabbitmq-c sending them and declares the connection dead when
//   the broker has been silent for two heartbeat intervals.
// - fail() or a socket error tears the connection down (after the current readable() returns,
//   so frames being processed stay valid), calls down(), and reconnects with exponential
//   backoff and jitter until stop().
#include <amqp.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "clients/rabbitmq/amqp_connect.hpp"
#include "clients/uv_helpers.hpp"
#include "core/config.hpp"
#include "core/result.hpp"

namespace sagaflow::rabbit {

struct LinkOptions {
  AmqpEndpoint endpoint;
  std::string name = "rabbitmq";  // for logs
  int heartbeat_s = 30;           // 0: none
  int connect_timeout_ms = 5000;
  std::int64_t reconnect_min_ms = 100;
  std::int64_t reconnect_max_ms = 5000;
};

// Blocking connect + login + channel 1 open. One-line errors, code unavailable:
// "cannot connect to RabbitMQ at 127.0.0.1:5672: connection refused".
Result<amqp_connection_state_t> connect_blocking(const LinkOptions& options);

// For an owner's readable() loop, before each amqp_simple_wait_frame_noblock: false once
// rabbitmq-c would have to read the socket a second time in this call (its buffer and frame
// queue are empty and `socket_read`, false at the call's start, says it read once already).
// The watch is level-triggered, so what arrives later wakes the loop again; the second read
// would mostly say only EAGAIN, a system call per loop turn. Plain TCP only: with TLS, OpenSSL
// could hold records that neither rabbitmq-c's buffer nor the watch shows.
inline bool worth_reading(amqp_connection_state_t conn, bool& socket_read) noexcept {
  if (amqp_data_in_buffer(conn) != 0 || amqp_frames_enqueued(conn) != 0) return true;
  if (socket_read) return false;
  socket_read = true;
  return true;
}

class UvLink {
 public:
  struct Events {
    // On a pool thread, after channel 1 is open. An error closes the connection and retries.
    std::function<Status(amqp_connection_state_t)> setup;
    std::function<void()> up;                // on the loop: connected and set up
    std::function<void()> readable;          // on the loop: drain frames (zero timeout)
    std::function<void(const Error&)> down;  // on the loop: an up connection was lost
  };

  UvLink(uv_loop_t* loop, LinkOptions options, Events events);
  ~UvLink();
  UvLink(const UvLink&) = delete;
  UvLink& operator=(const UvLink&) = delete;

  void start();
  // The owner saw an error: tear down (now, or after the current readable()), reconnect later.
  void fail(Error error) noexcept;
  // Close gracefully (connection.close), no reconnect. Deferred like fail() if inside readable().
  void stop() noexcept;
  // Stop reading the socket (the owner holds as much as it may) or read again. While held,
  // heartbeats are still sent and the unread socket is not taken for a silent broker; the
  // owner calls its own readable() after releasing (frames may sit in rabbitmq-c's buffer).
  void hold_reads(bool hold) noexcept;
  bool reads_held() const noexcept { return reads_held_; }
  // Appends a basic.publish on channel 1 to the turn's output (clients/rabbitmq/
  // publish_frames.hpp): the turn's publishes leave in one send at the end of the loop turn,
  // or at once when 64 KiB are waiting, instead of rabbitmq-c's send per frame (three per
  // small publish). A send the socket does not take whole waits for it, as rabbitmq-c's own
  // blocking sends do (they wait without end; this fails the connection after 10 s without
  // progress), so the stream is at a frame's end whenever rabbitmq-c writes (heartbeats,
  // replies). An error is the message's own (nothing was appended). The socket is plain TCP
  // (amqp_tcp_socket): a TLS link would have to write through rabbitmq-c instead.
  Status publish(amqp_bytes_t exchange, amqp_bytes_t routing_key,
                 const amqp_basic_properties_t& props, amqp_bytes_t body);
  // Calls the owner's readable() now (as the socket watcher does), e.g. after hold_reads(false).
  void read_now() { dispatch_readable(); }

  // Usable: up and not being torn down. conn() is non-null only while up.
  bool usable() const noexcept { return conn_ != nullptr && pending_ == Pending::none; }
  amqp_connection_state_t conn() const noexcept { return conn_; }
  // Incremented on each successful connect: delivery tags and confirms belong to one generation.
  std::uint64_t generation() const noexcept { return generation_; }
  const std::string& name() const noexcept { return options_.name; }
  uv_loop_t* loop() const noexcept { return loop_; }

 private:
  struct ConnectJob;
  enum class Pending : std::uint8_t { none, fail, stop };

  void begin_connect();
  void on_connected(ConnectJob* job);
  void schedule_reconnect();
  void dispatch_readable();
  void watch_socket();
  void teardown(bool graceful);
  void on_heartbeat_tick();
  void flush() noexcept;        // writes the turn's output; a failure fails the connection
  Status write_out() noexcept;  // writes the turn's output, or says why it could not

  uv_loop_t* loop_;
  LinkOptions options_;
  Events events_;
  amqp_connection_state_t conn_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  ConnectJob* job_ = nullptr;
  clients::Timer reconnect_timer_;
  clients::Timer heartbeat_timer_;
  clients::EndOfTurn end_of_turn_;
  std::string out_;  // the turn's publishes, whole frames (publish())
  std::size_t frame_max_ = 0;
  std::uint64_t generation_ = 0;
  int failures_ = 0;  // consecutive failed connects
  int depth_ = 0;     // > 0 while inside readable()
  Pending pending_ = Pending::none;
  Error pending_error_;
  bool started_ = false;
  bool stopped_ = false;
  bool reads_held_ = false;
  std::int64_t last_activity_ms_ = 0;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace sagaflow::rabbit
