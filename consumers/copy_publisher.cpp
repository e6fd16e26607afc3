#include "consumers/copy_publisher.hpp"

#include <algorithm>
#include <utility>

#include "clients/uv_helpers.hpp"
#include "consumers/copy_plan.hpp"
#include "core/log.hpp"

namespace sagaflow {
namespace {

// While the sink is not connected, how often waiting copies check again.
constexpr std::int64_t kSinkWaitMs = 50;

}  // namespace

CopyPublisher::CopyPublisher(uv_loop_s* loop, Sink& sink, CopyPublisherOptions options,
                             Events events)
    : loop_(loop),
      sink_(sink),
      options_(std::move(options)),
      events_(std::move(events)),
      timer_(std::make_unique<clients::Timer>(loop)) {}

CopyPublisher::~CopyPublisher() {
  alive_.reset();
}

void CopyPublisher::publish(std::uint64_t tag, Message copy) {
  send(tag, std::make_shared<Message>(std::move(copy)));
}

void CopyPublisher::send(std::uint64_t tag, std::shared_ptr<Message> keep) {
  // The sink takes its own copy: this one is kept for a re-send if the broker does not confirm.
  std::weak_ptr<int> alive = alive_;
  sink_.publish(Message(*keep), [this, alive, tag, keep](Status s) {
    if (alive.expired()) return;
    on_result(tag, keep, s);
  });
}

void CopyPublisher::on_result(std::uint64_t tag, const std::shared_ptr<Message>& keep,
                              const Status& s) {
  if (!events_.wanted(tag)) return;  // the original comes back from the broker
  if (s) {
    if (options_.on_dead_lettered && keep->exchange == options_.dead_letter_destination) {
      if (auto note = dead_letter_note(*keep, options_.dead_letter_where))
        options_.on_dead_lettered(*note);
    }
    events_.settled(tag);
    return;
  }
  if (s.error().code == Errc::too_large) {
    // The broker will never take it (larger than its limit, with our headers): it must not pin
    // its original. It becomes a dead letter without its body (size and SHA-256 kept); only if
    // even that is refused is it given up (the source logs where the original still is).
    const bool given_up = keep->body.empty();
    if (given_up && options_.keep_refused_originals) {
      // Settling would delete the only copy of the original (a RabbitMQ ack): try the small
      // dead letter again later; the original stays unsettled meanwhile.
      log::error("dead letter without its body refused as too large; trying it again",
                 {{options_.log_key, options_.name}, {"message_id", keep->message_id}});
      return wait(tag, keep, options_.republish_delay_ms);
    }
    if (events_.too_large) events_.too_large(tag, *keep, given_up);
    if (given_up) {
      events_.settled(tag);
    } else {
      send(tag, std::make_shared<Message>(without_body(*keep, options_.dead_letter_destination)));
    }
    return;
  }
  // Not connected (yet, e.g. right after start, or again): sent as soon as the sink is up. Not
  // confirmed by a connected broker: sent again after a pause.
  const bool up = sink_.connected();
  if (up) {
    log::warn("retry / dead-letter copy not confirmed; publishing it again",
              {{options_.log_key, options_.name}, {"error", s.error().detail}});
  }
  wait(tag, keep, up ? options_.republish_delay_ms : 0);
}

void CopyPublisher::wait(std::uint64_t tag, const std::shared_ptr<Message>& keep,
                         std::int64_t delay_ms) {
  const std::int64_t due = clients::now_ms(loop_) + delay_ms;
  const auto at = waiting_.insert(
      std::upper_bound(waiting_.begin(), waiting_.end(), due,
                       [](std::int64_t d, const Waiting& w) { return d < w.due_ms; }),
      Waiting{tag, due, keep});
  // The timer serves the earliest copy: re-armed when this one goes first.
  if (!timer_->active() || at == waiting_.begin()) arm(std::max(delay_ms, kSinkWaitMs));
}

void CopyPublisher::arm(std::int64_t delay_ms) {
  timer_->start(delay_ms, [this] { run(); });
}

void CopyPublisher::run() {
  if (!sink_.connected()) {  // nothing to gain by failing again: wait for the sink
    // Copies of originals no longer waiting for them (a revoked partition, a closed channel)
    // are dropped meanwhile: a long outage must not hold their bodies.
    std::erase_if(waiting_, [this](const Waiting& w) { return !events_.wanted(w.tag); });
    if (!waiting_.empty()) arm(kSinkWaitMs);
    return;
  }
  const std::int64_t now = clients::now_ms(loop_);
  while (!waiting_.empty() && waiting_.front().due_ms <= now) {
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    if (!events_.wanted(w.tag)) continue;
    send(w.tag, std::move(w.message));
  }
  if (!waiting_.empty()) arm(std::max<std::int64_t>(1, waiting_.front().due_ms - now));
}

void CopyPublisher::clear() noexcept {
  timer_->stop();
  waiting_.clear();
}

}  // namespace sagaflow
