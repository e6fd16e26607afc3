#pragma once
// A SagaRepository that remembers the sagas this worker committed or loaded last, so a reply to
// a command this worker sent is stepped without loading its saga first (one Redis round trip
// less per reply). A record's order facts are written once (its first commit), so an entry
// keeps them from the commit or load before; a commit without them and with nothing remembered
// is not remembered. A saga changed elsewhere (another worker, the console) is caught two ways: a
// step that commits meets the version check (`conflict` drops the entry and the pipeline re-loads);
// a step that would change nothing (the event looks stale to the remembered state, or a
// timeout's id a duplicate) is re-run by the pipeline on a fresh load after forget().
//
// The version check cannot see one thing: Redis losing acknowledged writes (a restart with
// AOF everysec, a failover to a replica that had not got them), after which a version number
// is written again with another state. Such a loss always comes with a lost connection, so
// everything is forgotten whenever the Redis client's epoch (connects, disconnects, cluster
// redirects) moves.
//
// Bounded: at most `capacity` sagas and `max_bytes` of state, the oldest remembered dropped
// first; a state over max_bytes / 256 is not remembered; a finished saga, a failed commit and
// a duplicate drop theirs. A load answers from memory on the caller's stack.
#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

#include "app/worker/ports.hpp"
#include "core/hashed_key.hpp"

namespace sagaflow::app {

class CachedSagaRepository final : public SagaRepository {
 public:
  CachedSagaRepository(SagaRepository& inner, std::size_t capacity, std::size_t max_bytes,
                       std::function<std::uint64_t()> epoch = {})
      : inner_(inner), capacity_(capacity), max_bytes_(max_bytes), epoch_(std::move(epoch)) {}

  void load(const OrderId& order, std::function<void(Result<store::SagaRecord>)> done) override {
    check_epoch();
    if (const auto it = sagas_.find(HashedKey::probe(order.view())); it != sagas_.end()) {
      ++hits_;
      return done(it->second.record);
    }
    // A loaded saga is remembered too: its next commit needs the record's order facts, which
    // a commit writes only once.
    inner_.load(order, [this, key = order.str(),
                        done = std::move(done)](Result<store::SagaRecord> r) mutable {
      if (r.ok() && r->version > 0 && capacity_ > 0 && !finished(r->status) &&
          r->state.size() + r->order.size() <= max_bytes_ / 256) {
        remember(std::move(key), store::SagaRecord(r.value()));
      }
      done(std::move(r));
    });
  }

  void commit(std::shared_ptr<store::ApplyRequest> request,
              std::function<void(Result<store::ApplyOutcome>)> done) override {
    // What the commit writes is kept only if it is applied: then it is taken out of the
    // request (no copy). The record's order facts are written once: a commit without them
    // keeps those of the remembered saga; with neither, the saga is not remembered (Redis
    // has them).
    const store::ApplyRequest& c = *request;
    const bool keep =
        !c.finished && capacity_ > 0 && c.new_state.size() + c.order.size() <= max_bytes_ / 256 &&
        (!c.order.empty() || sagas_.find(HashedKey::probe(c.order_id.view())) != sagas_.end());
    auto answered = [this, request, keep,
                     done = std::move(done)](Result<store::ApplyOutcome> r) mutable {
      store::ApplyRequest& applied = *request;
      if (r.ok() && r->kind == store::ApplyKind::applied && keep) {
        taken(applied, r->version);
      } else {
        forget(applied.order_id);
      }
      done(std::move(r));
    };
    inner_.commit(std::move(request), std::move(answered));
  }

  void outbox_done(int partition, std::vector<std::string> ids) override {
    inner_.outbox_done(partition, std::move(ids));
  }

  bool forget(const OrderId& order) override {
    const auto it = sagas_.find(HashedKey::probe(order.view()));
    if (it == sagas_.end()) return false;
    erase(it);
    return true;
  }

  std::size_t size() const noexcept { return sagas_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t hits() const noexcept { return hits_; }

 private:
  struct Entry {
    store::SagaRecord record;
    std::uint64_t seq = 0;  // the remembering that is current (older queue entries are stale)
  };

  // An applied commit's record, taken out of its request: a commit without order facts keeps
  // those of the remembered saga (gone meanwhile: nothing is remembered; Redis has them).
  void taken(store::ApplyRequest& c, std::int64_t version) {
    store::SagaRecord after;
    after.version = version;
    if (!c.order.empty()) {
      after.order = take(c.order);
    } else {
      const auto before = sagas_.find(HashedKey::probe(c.order_id.view()));
      if (before == sagas_.end()) return;
      bytes_ -= before->second.record.order.size();  // moves to the new record, counted there
      after.order = std::move(before->second.record.order);
      before->second.record.order.clear();
    }
    after.state = take(c.new_state);
    after.status = c.new_status;
    remember(c.order_id.str(), std::move(after));
  }
  // A request's buffer, kept only if it holds little more than its size (the budget counts
  // sizes: a writer may have reserved far more), else copied to its size.
  static std::string take(std::string& s) {
    if (s.capacity() > s.size() + s.size() / 4 + 64) return std::string(s);
    return std::move(s);
  }

  void remember(std::string order, store::SagaRecord record) {
    check_epoch();
    const std::uint64_t seq = ++seq_;
    auto [it, inserted] = sagas_.try_emplace(HashedKey(std::move(order)));
    if (!inserted) bytes_ -= it->second.record.state.size() + it->second.record.order.size();
    bytes_ += record.state.size() + record.order.size();
    it->second.record = std::move(record);
    it->second.seq = seq;
    order_.emplace_back(it->first, seq);
    while (sagas_.size() > capacity_ || bytes_ > max_bytes_ || order_.size() > 2 * capacity_ + 16) {
      const auto& [oldest, oldest_seq] = order_.front();
      const auto found = sagas_.find(oldest);
      if (found != sagas_.end() && found->second.seq == oldest_seq) erase(found);
      order_.pop_front();
    }
  }
  template <class It>
  void erase(It it) {
    bytes_ -= it->second.record.state.size() + it->second.record.order.size();
    sagas_.erase(it);
  }
  // Everything goes when the Redis client's epoch moved (see the top of this file).
  void check_epoch() {
    if (!epoch_) return;
    const std::uint64_t now = epoch_();
    if (now == seen_epoch_) return;
    seen_epoch_ = now;
    sagas_.clear();
    order_.clear();
    bytes_ = 0;
  }

  // Finished records expire; an order's saga can then be started again from version 1, so
  // a remembered finished record could pass a later saga's version check.
  static bool finished(std::string_view status) {
    return status == "confirmed" || status == "failed" || status == "cancelled_before_start";
  }

  SagaRepository& inner_;
  std::size_t capacity_;
  std::size_t max_bytes_;
  std::function<std::uint64_t()> epoch_;
  std::uint64_t seen_epoch_ = 0;
  std::size_t bytes_ = 0;
  // Keys carry their hash (core/hashed_key.hpp): a lookup walking a bucket compares hashes
  // instead of re-hashing each order id it passes (3 % of the worker's CPU in a profile).
  std::unordered_map<HashedKey, Entry, HashedKey::Hash, HashedKey::Same> sagas_;
  std::deque<std::pair<HashedKey, std::uint64_t>> order_;  // remembering order, oldest first
  std::uint64_t seq_ = 0;
  std::size_t hits_ = 0;
};

}  // namespace sagaflow::app
