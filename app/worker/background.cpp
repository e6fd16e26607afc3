#include "app/worker/background.hpp"

#include <algorithm>
#include <memory>

#include "core/log.hpp"
#include "sagas/definition.hpp"
#include "sagas/engine.hpp"
#include "sagas/saga_state.hpp"

namespace sagaflow::app {

void DeadlineSweeper::tick() {
  if (outstanding_ > 0) return;
  constexpr int kBatch = 200;
  for (int p = 0; p < partitions_; ++p) {
    ++outstanding_;
    deadlines_.claim_due(p, kBatch, lease_ms_, [this](Result<store::DueDeadlines> due) {
      --outstanding_;
      if (!due) return;  // Redis down: the next tick tries again
      for (const auto& order : due->orders) pipeline_.on_deadline(order);
    });
  }
}

void ParkedStarter::tick() {
  if (counting_) return;
  counting_ = true;
  parking_.counts([this](Result<std::map<std::string, std::int64_t>> counts) {
    counting_ = false;
    if (!counts) return;  // Redis down: the next tick tries again
    std::int64_t total = 0;
    std::map<std::string, std::int64_t, std::less<>> by_store;
    for (const auto& [store, n] : counts.value()) {
      total += n;
      by_store.emplace(store, n);
    }
    parked_.set(static_cast<double>(total));
    pipeline_.set_parked_stores(by_store);
    for (const auto& [store, n] : by_store) {
      if (busy_.insert(store).second)
        serve(store, static_cast<int>(std::min<std::int64_t>(n, kPerStoreBudget)));
    }
  });
}

void ParkedStarter::serve(const std::string& store, int budget) {
  if (stopped_) {
    busy_.erase(store);
    return;
  }
  const StoreId id(store);
  admission_.admit_up_to(id, budget, /*peek=*/true, [this, store, id](Result<std::int64_t> avail) {
    if (!avail || avail.value() <= 0) {  // no token now (or Redis away): nothing leased
      busy_.erase(store);
      return;
    }
    parking_.claim_oldest(
        id, static_cast<int>(avail.value()), lease_ms_,
        [this, store, id](Result<std::vector<store::ParkedStart>> claimed) {
          if (!claimed || claimed->empty()) {  // none unleased (or Redis away): no token taken
            busy_.erase(store);
            return;
          }
          auto leased = std::make_shared<std::vector<store::ParkedStart>>(std::move(*claimed));
          admission_.admit_up_to(
              id, static_cast<std::int64_t>(leased->size()), /*peek=*/false,
              [this, store, leased](Result<std::int64_t> granted) {
                const std::size_t k =
                    granted ? static_cast<std::size_t>(std::clamp<std::int64_t>(
                                  granted.value(), 0, static_cast<std::int64_t>(leased->size())))
                            : 0;
                // The oldest k start now, in the order they were parked; the rest are given
                // back, first in line for the next tick.
                std::vector<OrderId> back;
                for (std::size_t i = k; i < leased->size(); ++i)
                  back.push_back((*leased)[i].order_id);
                if (!back.empty()) parking_.release(back);
                for (std::size_t i = 0; i < k; ++i)
                  pipeline_.on_parked_start((*leased)[i].order_id);
                if (k == 0) {
                  busy_.erase(store);
                  return;
                }
                // The bucket had tokens: more are coming, and perhaps more starts are parked.
                timers_.after(kReserveMs, [this, store] { serve(store, kPerStoreBudget); });
              });
        });
  });
}

void OutboxRelay::tick() {
  // Only claims gate the next tick: each claim renews this worker's hold on its partitions,
  // so it must go on while re-sends wait for a slow broker (the Outbox hands an entry out at
  // most once per min idle, and resending_ skips what is still being published).
  if (claiming_ > 0) return;
  for (int p = 0; p < outbox_.partitions(); ++p) {
    ++claiming_;
    outbox_.claim_stale(p, [this, p](Result<std::vector<store::OutboxEntry>> claimed) {
      --claiming_;
      if (!claimed || claimed->empty()) return;
      std::int64_t taken = 0;
      for (auto& entry : claimed.value()) {
        if (held_ && held_(p, entry.stream_id)) continue;  // our sink is on it
        if (resending_.count(std::to_string(p) + ':' + entry.stream_id) != 0) continue;
        ++taken;
        resend(p, std::move(entry));
      }
      if (taken > 0) {
        log::info("re-sending outbox entries left behind", {{"partition", p}, {"count", taken}});
      }
    });
  }
}

void OutboxRelay::resend(int partition, store::OutboxEntry entry) {
  const auto type = event_type_from(entry.command.route);
  const std::string_view order_id = order_of_message(entry.command.id);
  if (!type || is_outcome(*type) || order_id.empty()) return publish(partition, std::move(entry));
  OrderId order(order_id);
  auto shared = std::make_shared<store::OutboxEntry>(std::move(entry));
  sagas_.load(order, [this, partition, shared, type,
                      order = std::move(order)](Result<store::SagaRecord> record) {
    if (!record) return;  // Redis away: the entry stays and is claimed again later
    auto state = SagaState::from_record(record->state, record->order);
    if (record->version > 0 && state && !still_wanted(definition_, state.value(), *type)) {
      dropped_.inc();
      log::info("outbox entry no longer wanted by its saga; dropped",
                {{"command_id", shared->command.id}, {"saga_status", state->status_name()}});
      outbox_.ack(partition, {shared->stream_id});
      return;
    }
    std::optional<Extend> extend;
    if (const CommandRole role = definition_.command_role(*type); role.step >= 0) {
      extend = Extend{order, definition_.steps[static_cast<std::size_t>(role.step)].timeout_ms};
    }
    publish(partition, std::move(*shared), std::move(extend));
  });
}

void OutboxRelay::publish(int partition, store::OutboxEntry entry, std::optional<Extend> extend) {
  auto id = std::make_shared<std::string>(std::move(entry.stream_id));
  resending_.insert(std::to_string(partition) + ':' + *id);
  sink_.publish(
      std::move(entry.command), [this, partition, id, extend = std::move(extend)](Status st) {
        resending_.erase(std::to_string(partition) + ':' + *id);
        if (!st) return;  // stays in the outbox; handed out again after min idle
        resent_.inc();
        outbox_.ack(partition, {*id});
        if (extend) {
          deadlines_.extend(partition, extend->order, clock_.now_ms() + extend->timeout_ms,
                            [](Status) {});  // best effort: at worst the step times out as before
        }
      });
}

}  // namespace sagaflow::app
