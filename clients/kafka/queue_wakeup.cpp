#include "clients/kafka/queue_wakeup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>

namespace sagaflow::kafka {
namespace {

constexpr char kWake = 1;  // the byte librdkafka writes

}  // namespace

// Heap-allocated: freed by its close callback, which also closes the read end.
struct QueueWakeup::Poll {
  uv_poll_t handle;
  int fd = -1;
  bool alive = true;
  std::function<void()> on_wake;
};

QueueWakeup::QueueWakeup() {
  std::array<int, 2> fds{-1, -1};
  if (::pipe2(fds.data(), O_NONBLOCK | O_CLOEXEC) == 0) {
    read_fd_ = fds[0];
    write_fd_ = fds[1];
  }
}

QueueWakeup::~QueueWakeup() {
  if (poll_ != nullptr) {
    poll_->alive = false;
    uv_poll_stop(&poll_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), [](uv_handle_t* h) {
      auto* p = static_cast<Poll*>(h->data);
      if (p->fd >= 0) ::close(p->fd);
      delete p;
    });
    poll_ = nullptr;
    read_fd_ = -1;  // closed by the close callback
  }
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0) ::close(write_fd_);
}

void QueueWakeup::watch(rd_kafka_queue_t* queue) noexcept {
  if (queue != nullptr && write_fd_ >= 0) {
    rd_kafka_queue_io_event_enable(queue, write_fd_, &kWake, 1);
  }
}

void QueueWakeup::unwatch(rd_kafka_queue_t* queue) noexcept {
  if (queue != nullptr) rd_kafka_queue_io_event_enable(queue, -1, nullptr, 0);
}

void QueueWakeup::start(uv_loop_t* loop, std::function<void()> on_wake) {
  if (poll_ != nullptr || read_fd_ < 0) return;
  poll_ = new Poll;
  poll_->fd = read_fd_;
  poll_->handle.data = poll_;
  poll_->on_wake = std::move(on_wake);
  uv_poll_init(loop, &poll_->handle, read_fd_);
  uv_poll_start(&poll_->handle, UV_READABLE, [](uv_poll_t* h, int /*status*/, int /*events*/) {
    auto* p = static_cast<Poll*>(h->data);
    if (!p->alive) return;
    const std::function<void()> call = p->on_wake;  // the owner may destroy this object
    call();
  });
}

void QueueWakeup::stop() noexcept {
  if (poll_ != nullptr) uv_poll_stop(&poll_->handle);
}

void QueueWakeup::drain() noexcept {
  if (read_fd_ < 0) return;
  std::array<char, 256> buf{};
  while (::read(read_fd_, buf.data(), buf.size()) > 0) {
  }
}

}  // namespace sagaflow::kafka
