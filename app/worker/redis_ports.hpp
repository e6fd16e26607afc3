#pragma once
// The pipeline's Redis-side ports on store/: SagaStore + Outbox as the SagaRepository,
// RateLimiter as the StartAdmission. Thin conversions, no logic.
#include "app/worker/ports.hpp"
#include "store/outbox.hpp"
#include "store/rate_limiter.hpp"
#include "store/saga_store.hpp"

namespace sagaflow::app {

class RedisSagaRepository final : public SagaRepository {
 public:
  RedisSagaRepository(store::SagaStore& sagas, store::Outbox& outbox)
      : sagas_(sagas), outbox_(outbox) {}
  void load(const OrderId& order, std::function<void(Result<StoredSaga>)> done) override;
  void commit(const Commit& commit, std::function<void(Result<CommitResult>)> done) override;
  void outbox_done(int partition, std::vector<std::string> ids) override;

 private:
  store::SagaStore& sagas_;
  store::Outbox& outbox_;
};

class RedisAdmission final : public StartAdmission {
 public:
  RedisAdmission(store::RateLimiter& limiter, store::RedisClient& redis)
      : limiter_(limiter), redis_(redis) {}
  void admit(const StoreId& store, std::function<void(Result<Admission>)> done) override;
  void admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                   std::function<void(Result<std::int64_t>)> done) override;
  // INCR of the cluster-wide count shown by `sagaflow status` (best effort).
  void note_delayed(const StoreId& store) override;

 private:
  store::RateLimiter& limiter_;
  store::RedisClient& redis_;
};

}  // namespace sagaflow::app
