#include "app/worker/redis_ports.hpp"

#include "app/commands.hpp"

namespace sagaflow::app {

void RedisSagaRepository::load(const OrderId& order, std::function<void(Result<StoredSaga>)> done) {
  sagas_.load(order, [done = std::move(done)](Result<store::SagaRecord> r) {
    if (!r) return done(std::move(r).error());
    done(StoredSaga{r->version, std::move(r->state)});
  });
}

void RedisSagaRepository::commit(const Commit& c, std::function<void(Result<CommitResult>)> done) {
  store::ApplyRequest req;
  req.order_id = c.order_id;
  req.event_id.assign(c.event_id);
  req.expected_version = c.expected_version;
  req.new_state = c.state;
  req.new_status = c.status;
  req.old_status = c.old_status;
  req.deadline = c.deadline;
  req.finished = c.finished;
  req.store_id = c.store_id;
  req.parked_at = c.parked_at;
  req.updated_at = c.updated_at;
  req.reason = c.reason;
  req.commands.reserve(c.messages.size());
  for (const auto& m : c.messages)
    req.commands.push_back({m.message_id, m.exchange, m.routing_key, m.body});
  sagas_.apply(req, [done = std::move(done)](Result<store::ApplyOutcome> r) {
    if (!r) return done(std::move(r).error());
    CommitResult out;
    out.partition = r->partition;
    switch (r->kind) {
      case store::ApplyKind::applied:
        out.outcome = CommitOutcome::applied;
        break;
      case store::ApplyKind::duplicate:
        out.outcome = CommitOutcome::duplicate;
        break;
      case store::ApplyKind::conflict:
        out.outcome = CommitOutcome::conflict;
        break;
    }
    out.outbox_ids = std::move(r->stream_ids);
    done(std::move(out));
  });
}

void RedisSagaRepository::outbox_done(int partition, std::vector<std::string> ids) {
  outbox_.ack(partition, std::move(ids));
}

void RedisAdmission::admit(const StoreId& store, std::function<void(Result<Admission>)> done) {
  limiter_.admit(store, [done = std::move(done)](Result<store::Admission> r) {
    if (!r) return done(std::move(r).error());
    done(Admission{r->allowed, r->retry_after_ms});
  });
}

void RedisAdmission::admit_up_to(const StoreId& store, std::int64_t n, bool peek,
                                 std::function<void(Result<std::int64_t>)> done) {
  limiter_.admit_up_to(store, n, peek, [done = std::move(done)](Result<store::Admission> r) {
    if (!r) return done(std::move(r).error());
    done(r->granted);
  });
}

}  // namespace sagaflow::app

namespace sagaflow::app {

void RedisAdmission::note_delayed(const StoreId&) {
  redis_.command({"INCR", std::string(kRateLimitedKey)}, [](Result<store::Reply>) {});
}

}  // namespace sagaflow::app
