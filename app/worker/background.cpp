#include "app/worker/background.hpp"

#include <memory>

#include "core/log.hpp"

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

void OutboxRelay::tick() {
  if (outstanding_ > 0) return;
  for (int p = 0; p < outbox_.partitions(); ++p) {
    ++outstanding_;
    outbox_.claim_stale(p, [this, p](Result<std::vector<store::OutboxEntry>> claimed) {
      --outstanding_;
      if (!claimed || claimed->empty()) return;
      log::info("re-sending outbox entries left pending",
                {{"partition", p}, {"count", static_cast<std::int64_t>(claimed->size())}});
      for (auto& entry : claimed.value()) {
        OutgoingMessage m{std::move(entry.command.exchange), std::move(entry.command.route),
                          std::move(entry.command.id), std::move(entry.command.body)};
        auto id = std::make_shared<std::string>(std::move(entry.stream_id));
        ++outstanding_;
        sink_.publish(m, [this, p, id](Status st) {
          --outstanding_;
          if (!st) return;  // stays pending; claimed again after min idle
          resent_.inc();
          outbox_.ack(p, {*id});
        });
      }
    });
  }
}

}  // namespace sagaflow::app
