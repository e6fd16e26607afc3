#pragma once
// Per-order serialization inside one worker (CONTRACT.md section 4: two events of one order are
// never applied concurrently). Each order has a lane: a job runs only when it is at the front of
// its lane; finish() lets the next one start. Across workers, the saga version check (CAS) in
// the store does the same job.
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace sagaflow::app {

template <class Job>
class OrderLanes {
 public:
  using Start = std::function<void(Job&)>;
  explicit OrderLanes(Start start) : start_(std::move(start)) {}

  // Queues the job behind the order's running job, or starts it now.
  void submit(const std::string& order_id, std::unique_ptr<Job> job) {
    auto& lane = lanes_[order_id];
    lane.push_back(std::move(job));
    ++size_;
    if (lane.size() == 1) start_(*lane.front());
  }

  // The order's running job is done: drops it and starts the next one of that order.
  // Returns the finished job (the caller may re-submit it, e.g. after a rate-limit delay).
  std::unique_ptr<Job> finish(const std::string& order_id) {
    auto it = lanes_.find(order_id);
    if (it == lanes_.end() || it->second.empty()) return nullptr;
    std::unique_ptr<Job> done = std::move(it->second.front());
    it->second.pop_front();
    --size_;
    if (it->second.empty()) {
      lanes_.erase(it);
    } else {
      start_(*it->second.front());
    }
    return done;
  }

  std::size_t jobs() const noexcept { return size_; }
  std::size_t orders() const noexcept { return lanes_.size(); }

 private:
  Start start_;
  std::unordered_map<std::string, std::deque<std::unique_ptr<Job>>> lanes_;
  std::size_t size_ = 0;
};

}  // namespace sagaflow::app
