#pragma once
// Wakes the libuv loop when a librdkafka queue becomes non-empty: every watched queue writes a
// byte to one pipe (rd_kafka_queue_io_event_enable) whose read end a uv_poll watches. librdkafka
// writes only when a queue goes from empty to non-empty, so the owner serves each queue until
// it is empty, or posts itself another turn when it stops early (and keeps a timer as a safety
// net). Used by KafkaSource and KafkaSink.
//
// Every watched queue must be unwatched (or destroyed) before this object goes: librdkafka
// would otherwise write to a closed (or reused) descriptor. Safe to destroy inside its own
// callback (the poll handle is freed by its close callback). Include only from .cpp files.
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include <functional>

namespace sagaflow::kafka {

class QueueWakeup {
 public:
  // Makes the pipe; ok() is false when that failed (the owner then polls on its timer only).
  QueueWakeup();
  ~QueueWakeup();
  QueueWakeup(const QueueWakeup&) = delete;
  QueueWakeup& operator=(const QueueWakeup&) = delete;

  bool ok() const noexcept { return write_fd_ >= 0; }

  // Makes `queue` write to the pipe when it becomes non-empty (no-op without a pipe or queue).
  void watch(rd_kafka_queue_t* queue) noexcept;
  static void unwatch(rd_kafka_queue_t* queue) noexcept;

  // Starts watching the pipe on `loop`: `on_wake` runs on the loop thread. Once.
  void start(uv_loop_t* loop, std::function<void()> on_wake);
  // Stops calling on_wake (the pipe stays, so watched queues may still write to it).
  void stop() noexcept;
  // Reads the pipe dry (call at the start of a wake-up, before serving the queues).
  void drain() noexcept;

 private:
  struct Poll;
  Poll* poll_ = nullptr;
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace sagaflow::kafka
