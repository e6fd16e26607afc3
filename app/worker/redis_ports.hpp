#pragma once
// The pipeline's Redis-side ports on store/: SagaStore + Outbox as the SagaRepository,
// RateLimiter as the StartAdmission. The ports speak the store's types, so these only forward.
#include "app/worker/ports.hpp"
#include "store/outbox.hpp"
#include "store/rate_limiter.hpp"
#include "store/saga_store.hpp"

namespace sagaflow::app {

class RedisSagaRepository final : public SagaRepository {
 public:
  RedisSagaRepository(store::SagaStore& sagas, store::Outbox& outbox)
      : sagas_(sagas), outbox_(outbox) {}
  void load(const OrderId& order, std::function<void(Result<store::SagaRecord>)> done) override {
    sagas_.load(order, std::move(done));
  }
  void commit(std::shared_ptr<store::ApplyRequest> request,
              std::function<void(Result<store::ApplyOutcome>)> done) override {
    sagas_.apply(*request, std::move(done));
  }
  void outbox_done(int partition, std::vector<std::string> ids) override {
    outbox_.ack(partition, std::move(ids));
  }

 private:
  store::SagaStore& sagas_;
  store::Outbox& outbox_;
};

class RedisAdmission final : public StartAdmission {
 public:
  RedisAdmission(store::RateLimiter& limiter, store::RedisClient& redis)
      : limiter_(limiter), redis_(redis) {}
  void admit(const StoreId& store, std::function<void(Result<store::Admission>)> done) override {
    limiter_.admit(store, std::move(done));
  }
  void admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                   std::function<void(Result<std::int64_t>)> done) override;
  // INCR of the cluster-wide count shown by `sagaflow status` (best effort).
  void note_delayed(const StoreId& store) override;
  void plan_for_commit(const StoreId& store,
                       std::function<void(Result<std::optional<store::GcraParams>>)> done) override;

 private:
  store::RateLimiter& limiter_;
  store::RedisClient& redis_;
};

}  // namespace sagaflow::app
