// sagaflow simulate: the participants. Consumes sagaflow.participants (Kafka: group
// sagaflow-participants on sagaflow.commands), answers every command on sagaflow.events
// (deterministically by command id, see participants.hpp), optionally after
// --latency-ms, and acks the command only once the answer is confirmed by the broker. A
// command that is not a valid envelope is dead-lettered with its reason.
#include <cstdio>
#include <memory>

#include "app/commands.hpp"
#include "app/impl/loop_runner.hpp"
#include "app/simulator/participants.hpp"
#include "app/worker/uv_timers.hpp"
#include "brokers/broker.hpp"
#include "core/envelope.hpp"
#include "core/log.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

int run_simulate(const Config& config, const SimulateArgs& args) {
  LoopRunner runner;
  const auto broker = brokers::open_broker(config);
  std::unique_ptr<Sink> sink_owner = broker->make_sink(runner.loop(), "sagaflow-simulator-publish");
  Sink& sink = *sink_owner;
  std::unique_ptr<Source> source_owner = broker->make_source(
      runner.loop(), brokers::Role::participants, sink, "sagaflow-simulator-consume");
  Source& source = *source_owner;
  UvTimers timers(runner.loop());
  SystemClock clock;
  const Participants participants(
      {args.seed, args.fail_inventory, args.fail_payment, args.fail_shipment, args.no_answer});
  EnvelopeParser parser(config.max_message_bytes);
  Event command;
  std::uint64_t answered = 0;

  auto send = [&](std::uint64_t tag, std::shared_ptr<Reply> reply) {
    Message m;
    m.exchange = std::string(topology::kEventsExchange);
    m.routing_key = std::string(to_string(reply->type));
    m.key = std::move(reply->order_id);
    m.message_id = reply->id;
    m.body = std::move(reply->body);
    sink.publish(std::move(m), [&, tag](Status st) {
      if (!st) {
        source.settle(tag, Verdict::retry(st.error().code, st.error().detail));
        return;
      }
      ++answered;
      source.settle(tag, Verdict::ack());
    });
  };

  source.start([&](const Delivery& d) {
    if (auto st = parser.parse(d.body, command); !st) {
      source.settle(d.tag, Verdict::dead_letter(st.error().code, st.error().detail));
      return;
    }
    auto reply = participants.answer(command, clock.now_ms());
    if (!reply) {
      source.settle(d.tag, Verdict::ack());  // deliberately unanswered (drives timeouts)
      return;
    }
    auto shared = std::make_shared<Reply>(std::move(*reply));
    if (args.latency_ms > 0) {
      timers.after(args.latency_ms, [&, tag = d.tag, shared] { send(tag, shared); });
    } else {
      send(d.tag, shared);
    }
  });
  sink.on_writable([&] { source.resume(); });
  sink.start();
  runner.on_signal([&] {
    source.stop([&] {
      timers.stop();
      sink.stop();
      log::info("simulator stopped", {{"answered", answered}});
    });
  });
  log::info("simulator started", {{"seed", static_cast<std::uint64_t>(args.seed)}});
  runner.run();
  return 0;
}

}  // namespace sagaflow::app
