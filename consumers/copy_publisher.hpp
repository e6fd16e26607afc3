#pragma once
// CopyPublisher: publishes the retry and dead-letter copies of both sources (RabbitSource,
// KafkaSource) through their Sink, and keeps each copy until the broker confirmed it:
//
// - A copy the sink refused while it was down is sent again as soon as the sink is connected
//   (checked every 50 ms while copies wait: the Sink's state notification belongs to its
//   owner); one a connected sink did not confirm is sent again after `republish_delay_ms`.
//   Never lost, at worst sent twice.
// - A copy refused as too large for the broker (Errc::too_large) becomes a dead letter without
//   its body (copy_plan.hpp without_body()), so it cannot pin its original; if even that is
//   refused, it is given up and the original settled, or, where settling would delete the
//   original (keep_refused_originals), tried again later.
// - A confirmed dead-letter copy goes to the dead-letter listener.
// - The source says through `wanted(tag)` whether the original still waits for its copy (a
//   lost connection or a revoked partition gives the original to the broker again, so its copy
//   is forgotten), and learns through `settled(tag)` that it may ack / commit the original.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "consumers/source.hpp"
#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow {

namespace clients {
class Timer;
}  // namespace clients

struct CopyPublisherOptions {
  std::string name;                     // the source's name, in logs
  std::string log_key = "source";       // the log field naming the source ("link" on RabbitMQ)
  std::string dead_letter_destination;  // the exchange / topic dead-letter copies go to
  std::string dead_letter_where;        // DeadLetterNote::where (the queue or topic to read)
  DeadLetterListener on_dead_lettered;  // each dead-letter copy the broker confirmed
  std::int64_t republish_delay_ms = 1000;
  // A dead letter refused as too large even without its body: false, given up and the original
  // settled (Kafka: the original stays in its topic); true, tried again after
  // republish_delay_ms with the original unsettled (RabbitMQ: an ack would delete it).
  bool keep_refused_originals = false;
};

class CopyPublisher {
 public:
  struct Events {
    // The original still waits for its copy (false: forget the copy).
    std::function<bool(std::uint64_t tag)> wanted;
    // The copy is with the broker (or given up, see too_large): settle the original.
    std::function<void(std::uint64_t tag)> settled;
    // The broker refused `refused` as too large. given_up false: it goes again as a dead letter
    // without its body; true: it was that already, the original is settled without a copy.
    // For the source's log line (where the original is) and its counters.
    std::function<void(std::uint64_t tag, const Message& refused, bool given_up)> too_large;
  };

  CopyPublisher(uv_loop_s* loop, Sink& sink, CopyPublisherOptions options, Events events);
  ~CopyPublisher();
  CopyPublisher(const CopyPublisher&) = delete;
  CopyPublisher& operator=(const CopyPublisher&) = delete;

  // Publishes the copy of the original `tag` (the source's delivery tag).
  void publish(std::uint64_t tag, Message copy);
  // Forgets every copy waiting to be sent again and stops the timer (stop, close).
  void clear() noexcept;
  std::size_t waiting() const noexcept { return waiting_.size(); }
  Sink& sink() noexcept { return sink_; }

 private:
  struct Waiting {
    std::uint64_t tag;
    std::int64_t due_ms;
    std::shared_ptr<Message> message;
  };
  void send(std::uint64_t tag, std::shared_ptr<Message> keep);
  void on_result(std::uint64_t tag, const std::shared_ptr<Message>& keep, const Status& status);
  void wait(std::uint64_t tag, const std::shared_ptr<Message>& keep, std::int64_t delay_ms);
  void arm(std::int64_t delay_ms);
  void run();

  uv_loop_s* loop_;
  Sink& sink_;
  CopyPublisherOptions options_;
  Events events_;
  std::unique_ptr<clients::Timer> timer_;
  std::deque<Waiting> waiting_;                            // in due order
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // guards callbacks from the sink
};

}  // namespace sagaflow
