#pragma once
// `sagaflow publish`: events from a JSON-lines file (or stdin) or synthetic order.created,
// published with confirms through the broker's Sink (the caller's PublishTarget: RabbitSink or
// KafkaSink) on a private libuv loop. On Kafka the record key is the order_id (one order, one
// partition).
//
// --file: each line is parsed with EnvelopeParser; a bad line is reported on stderr as
//   "line 12: invalid_event: field 'data.total': ..." and not sent; the rest are sent. Blank
//   lines are skipped. With raw, lines are sent as they are (no validation, no key) to
//   sagaflow.events with routing key `route`. Events go to sagaflow.events (commands to
//   sagaflow.commands) with routing key = type, message_id = id, the line's bytes unchanged as the
//   body.
// --generate N: synthetic order.created (producers/order_generator.hpp), deterministic for
//   --seed, spread over --stores stores, at most --rate per second (0: as fast as confirms
//   allow).
// A progress line on stderr when stderr is a terminal; one summary line at the end:
//   "published 5000 events in 1.2 s (4100/s), 0 failed".
// Exit code: 0 all sent and confirmed; 1 a bad line, a publish not confirmed after retries,
// or RabbitMQ unreachable (one line on stderr); 2 bad options.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/result.hpp"
#include "producers/sink.hpp"

struct uv_loop_s;

namespace sagaflow {

struct PublishOptions {
  std::string file;                      // "-" = stdin; empty with --generate
  std::optional<std::int64_t> generate;  // number of synthetic order.created
  double rate = 0;                       // events per second; 0 = unlimited
  int stores = 10;
  std::uint64_t seed = 1;
  bool raw = false;  // --raw: each line sent unvalidated (poison drills), with routing key `route`
  std::string route = "order.created";
  std::size_t window = 1024;  // unconfirmed publishes in flight
  int progress = -1;          // -1: if stderr is a terminal; 0: never; 1: always
};

// Where the job publishes: the caller's broker (brokers/broker.hpp) supplies both.
struct PublishTarget {
  std::function<Status()> probe;  // fails fast, with the reason, when the broker is unreachable
  std::function<std::unique_ptr<Sink>(uv_loop_s*, std::size_t window)> make_sink;
};

int run_publish_job(const Config& config, const PublishOptions& options,
                    const PublishTarget& target);

}  // namespace sagaflow
