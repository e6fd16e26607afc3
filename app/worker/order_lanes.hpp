#pragma once
// Per-order serialization inside one worker (CONTRACT.md section 4: two events of one order are
// never applied concurrently). Each order has a lane: a job runs only when it is at the front of
// its lane; finish() lets the next one start. Across workers, the saga version check (CAS) in
// the store does the same job.
//
// No allocation per event in the steady state: a lane's map node is kept when the lane empties
// and reused for the next order (its key's and its queue's capacity too), and the queue behind
// the running job is a vector that stays empty unless one order has several jobs at once.
// start() may run the job to its end at once (finish() from inside start()).
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/hashed_key.hpp"

namespace sagaflow::app {

template <class Job>
class OrderLanes {
 public:
  using Start = std::function<void(Job&)>;
  explicit OrderLanes(Start start) : start_(std::move(start)) {}

  // Queues the job behind the order's running job, or starts it now.
  void submit(std::string_view order_id, std::unique_ptr<Job> job) {
    ++size_;
    const HashedKey::Probe key = HashedKey::probe(order_id);
    if (const auto it = lanes_.find(key); it != lanes_.end()) {
      it->second.waiting.push_back(std::move(job));
      return;
    }
    Lane* lane = nullptr;
    if (!spare_.empty()) {
      auto node = std::move(spare_.back());
      spare_.pop_back();
      node.key().assign(key);
      lane = &lanes_.insert(std::move(node)).position->second;
    } else {
      lane = &lanes_.try_emplace(HashedKey(key)).first->second;
    }
    lane->running = std::move(job);
    start_(*lane->running);
  }

  // The order's running job is done: drops it and starts the next one of that order.
  // Returns the finished job (the caller may re-submit it, e.g. after a rate-limit delay).
  std::unique_ptr<Job> finish(std::string_view order_id) {
    const auto it = lanes_.find(HashedKey::probe(order_id));
    if (it == lanes_.end() || !it->second.running) return nullptr;
    Lane& lane = it->second;
    std::unique_ptr<Job> done = std::move(lane.running);
    --size_;
    if (lane.next < lane.waiting.size()) {
      lane.running = std::move(lane.waiting[lane.next++]);
      if (lane.next == lane.waiting.size()) {
        lane.waiting.clear();
        lane.next = 0;
      } else if (lane.next >= 64 && 2 * lane.next >= lane.waiting.size()) {
        lane.waiting.erase(lane.waiting.begin(),
                           lane.waiting.begin() + static_cast<std::ptrdiff_t>(lane.next));
        lane.next = 0;
      }
      start_(*lane.running);  // may finish it, and more of this lane, at once
    } else {
      lane.waiting.clear();
      lane.next = 0;
      if (spare_.size() < kMaxSpare) {
        spare_.push_back(lanes_.extract(it));
      } else {
        lanes_.erase(it);
      }
    }
    return done;
  }

  std::size_t jobs() const noexcept { return size_; }
  std::size_t orders() const noexcept { return lanes_.size(); }

 private:
  struct Lane {
    std::unique_ptr<Job> running;
    std::vector<std::unique_ptr<Job>> waiting;  // behind it, from `next` on
    std::size_t next = 0;
  };
  // Keys carry their hash (core/hashed_key.hpp): a lookup compares hashes, not order ids.
  using Map = std::unordered_map<HashedKey, Lane, HashedKey::Hash, HashedKey::Same>;
  static constexpr std::size_t kMaxSpare = 4096;

  Start start_;
  Map lanes_;
  std::vector<typename Map::node_type> spare_;  // emptied lanes' nodes, reused
  std::size_t size_ = 0;
};

}  // namespace sagaflow::app
