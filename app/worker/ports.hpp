#pragma once
// The side effects of the saga pipeline, as narrow interfaces (STYLE.md 4). They speak the
// store's own types (a saga record, an apply request and its outcome, an outbox command, an
// admission): the worker wires them to Redis (store/) and the broker (producers/); the unit
// tests wire fakes, so the whole apply path is tested without a network and with an injected
// clock.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/result.hpp"
#include "store/rate_limiter.hpp"
#include "store/saga_store.hpp"

namespace sagaflow::app {

class SagaRepository {
 public:
  virtual ~SagaRepository() = default;
  virtual void load(const OrderId& order, std::function<void(Result<store::SagaRecord>)> done) = 0;
  // One atomic change of one saga (store/saga_store.hpp). Shared, because a repository may
  // keep it until it answers: the Redis one serializes it at once; the cache takes the new
  // state and order facts out of it once applied (so the caller must not read those after
  // the commit is answered; the commands stay).
  virtual void commit(std::shared_ptr<store::ApplyRequest> request,
                      std::function<void(Result<store::ApplyOutcome>)> done) = 0;
  // The messages of a commit were confirmed by the broker: clear them from the outbox.
  virtual void outbox_done(int partition, std::vector<std::string> ids) = 0;
  // Drops what the repository remembers of this saga (a load may answer from memory); true if
  // it remembered any, so the last load may have been stale. A step that commits is safe
  // anyway (the version check), but one that changes nothing (ignored) must be re-checked.
  virtual bool forget(const OrderId& /*order*/) { return false; }
};

class StartAdmission {
 public:
  virtual ~StartAdmission() = default;
  virtual void admit(const StoreId& store, std::function<void(Result<store::Admission>)> done) = 0;
  // Up to n starts at once: done(k), 0 <= k <= n admitted (with peek: would be; none taken).
  virtual void admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                           std::function<void(Result<std::int64_t>)> done) = 0;
  // A saga start was delayed by its store's limit (called once per delayed order).
  virtual void note_delayed(const StoreId& store) = 0;
  // The store's plan, for an admission inside the start's own commit (store::SagaStart, Admit
  // gcra: one Redis call per loop turn for starts and their admissions). done(nullopt) where
  // that cannot be (a cluster: the bucket is in another slot); the start is then read first
  // and admitted by admit(), so a duplicate still takes no token.
  virtual void plan_for_commit(
      const StoreId& store, std::function<void(Result<std::optional<store::GcraParams>>)> done) = 0;
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // done(ok) once the broker confirmed; an error is transient (the outbox re-sends later).
  // Taken by value: a caller done with the command moves it in (no copy of its body).
  virtual void publish(store::OutboxCommand message, std::function<void(Status)> done) = 0;
};

class Timers {
 public:
  virtual ~Timers() = default;
  virtual void after(Millis delay, std::function<void()> fn) = 0;
};

}  // namespace sagaflow::app
