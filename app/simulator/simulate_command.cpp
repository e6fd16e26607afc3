// sagaflow simulate: the participants. Consumes sagaflow.participants, answers every command
// on sagaflow.events (deterministically by command id, see participants.hpp), optionally after
// --latency-ms, and acks the command only once the answer is confirmed by the broker. A
// command that is not a valid envelope is dead-lettered with its reason.
#include <cstdio>
#include <memory>

#include "app/commands.hpp"
#include "app/impl/loop_runner.hpp"
#include "app/simulator/participants.hpp"
#include "app/worker/uv_timers.hpp"
#include "consumers/rabbit_source.hpp"
#include "core/envelope.hpp"
#include "core/log.hpp"
#include "producers/rabbit_sink.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

int run_simulate(const Config& config, const SimulateArgs& args) {
  LoopRunner runner;
  RabbitSinkOptions sink_options;
  sink_options.endpoint = config.amqp;
  sink_options.name = "sagaflow-simulator-publish";
  RabbitSink sink(runner.loop(), sink_options);
  RabbitSourceOptions source_options;
  source_options.endpoint = config.amqp;
  source_options.queue = std::string(topology::kParticipantsQueue);
  source_options.prefetch = config.prefetch;
  source_options.retry.max_attempts = config.max_attempts;
  source_options.name = "sagaflow-simulator-consume";
  RabbitSource source(runner.loop(), source_options, sink);
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
