#include "app/worker/worker.hpp"

#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/dead_letter_listener.hpp"
#include "app/impl/exit_backstop.hpp"
#include "app/impl/redis_clock.hpp"
#include "app/worker/background.hpp"
#include "app/worker/cached_repository.hpp"
#include "app/worker/pipeline.hpp"
#include "app/worker/redis_ports.hpp"
#include "app/worker/sink_port.hpp"
#include "app/worker/uv_timers.hpp"
#include "brokers/broker.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/server.hpp"
#include "sagas/definition.hpp"
#include "store/dead_letters.hpp"
#include "store/deadlines.hpp"
#include "store/outbox.hpp"
#include "store/rate_limiter.hpp"
#include "store/saga_store.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

constexpr Millis kSweepEveryMs = 200;
constexpr Millis kParkedEveryMs = 50;     // the scheduler of parked starts
constexpr Millis kParkedLeaseMs = 10000;  // a leased parked start is taken over after this
// An outbox entry still there after this long was left behind and is re-sent by the relay of
// its partition: well within the shortest step timeout of the saga, so that a command a dead
// worker committed but never published is re-sent before its step times out. (A re-send of a
// slow publish is a harmless duplicate.)
Millis outbox_idle_ms(const SagaDefinition& d) {
  Millis shortest = std::numeric_limits<Millis>::max();
  for (const auto& step : d.steps) shortest = std::min(shortest, step.timeout_ms);
  return std::clamp<Millis>(shortest / 3, 200, 5000);
}
Millis relay_every_ms(const SagaDefinition& d) {
  return std::clamp<Millis>(outbox_idle_ms(d) / 2, 100, 1000);
}
// After the sink (re)connects: long enough for the relay to claim and re-send what is pending.
std::uint64_t sweep_grace_ms(const SagaDefinition& d) {
  return static_cast<std::uint64_t>(2 * outbox_idle_ms(d) + relay_every_ms(d));
}
constexpr Millis kStatsEveryMs = 5000;
// Sagas remembered after this worker's commits, so that replies skip their load: at most this
// many, and this many bytes of state (a saga is ~1 KiB; one over 64 KiB is not remembered).
constexpr std::size_t kSagaCacheSize = 16384;
constexpr std::size_t kSagaCacheBytes = std::size_t{16} << 20;
constexpr Millis kClockSyncEveryMs = 2000;  // Redis TIME: the one clock of every deadline
// SIGTERM: intake drains for at most kDrainLimitMs, the sink's confirms then get the rest of
// kShutdownLimitMs; past it the process exits anyway (what is unsettled is redelivered and
// what is unconfirmed is in the outbox), so exit always comes within the contract's 10 s.
constexpr Millis kDrainLimitMs = 6000;
constexpr Millis kShutdownLimitMs = 9300;

// Tests only: the worker's host clock off by this much (a clock-skew test without libfaketime).
Millis host_clock_skew_ms() {
  const char* v = std::getenv("SAGAFLOW_TEST_CLOCK_SKEW_MS");
  return v == nullptr ? 0 : std::strtoll(v, nullptr, 10);
}

std::string consumer_name() {
  char host[64] = "worker";
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}-{}-{:04x}", host, getpid(), rd() & 0xffff);
}

}  // namespace

struct Worker::Impl {
  uv_loop_t* loop;
  const Config& config;
  const SagaDefinition& definition;
  const std::string consumer = consumer_name();
  metrics::Registry registry;
  UvTimers timers;

  store::RedisClient redis;
  RedisClock clock{redis, host_clock_skew_ms()};  // Redis' clock, read through the host's
  store::SagaStore sagas;
  store::Outbox outbox;
  store::Deadlines deadlines;
  store::RateLimiter limiter;
  store::Parking parking;
  store::DeadLetterIndex dead_letters{redis};
  RedisSagaRepository redis_repo{sagas, outbox};
  CachedSagaRepository repo{redis_repo, kSagaCacheSize, kSagaCacheBytes, [this] {
                              const auto s = redis.stats();
                              return s.connects + s.disconnects + s.redirects;
                            }};
  RedisAdmission admission{limiter, redis};

  std::unique_ptr<brokers::Broker> broker;
  std::unique_ptr<Sink> sink_owner;
  Sink& sink;
  SinkPort sink_port{sink};
  std::unique_ptr<Source> source_owner;
  Source& source;
  Pipeline pipeline;
  DeadlineSweeper sweeper;
  ParkedStarter starter;
  OutboxRelay relay;
  http::Server http;

  metrics::Gauge& stuck;
  metrics::Gauge& ready;
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  bool draining = false;
  bool closed = false;
  std::uint64_t broker_up_since = 0;
  bool source_was_reading = false;  // uv_now when the sink or the source last connected

  static store::RedisClientOptions redis_options(const Config& c) {
    store::RedisClientOptions o;
    o.endpoint = c.redis;
    o.name = "sagaflow-worker";
    o.partitions = c.redis_partitions;
    return o;
  }
  static store::SagaStoreOptions saga_options(const Config& c) {
    store::SagaStoreOptions o;
    o.partitions = c.redis_partitions;
    o.dedup_ttl_s = c.dedup_ttl_s;
    o.wait_replicas = c.redis_wait_replicas;
    return o;
  }
  static store::OutboxOptions outbox_options(const Config& c, const SagaDefinition& d,
                                             const std::string& consumer) {
    store::OutboxOptions o;
    o.partitions = c.redis_partitions;
    o.consumer = consumer;
    o.min_idle_ms = outbox_idle_ms(d);
    // A dead holder's partitions are relayed again within about the min idle, as entries
    // become stale (the hold is renewed every relay tick, at least twice per hold).
    o.relay_lease_ms = std::max<Millis>(outbox_idle_ms(d), 2 * relay_every_ms(d));
    return o;
  }
  static store::RateLimiterOptions limiter_options(const Config& c) {
    store::RateLimiterOptions o;
    o.plans = c.plans;
    o.default_plan = c.default_plan;
    return o;
  }
  Impl(uv_loop_t* l, const Config& c, const SagaDefinition& d)
      : loop(l),
        config(c),
        definition(d),
        timers(l),
        redis(l, redis_options(c)),
        sagas(redis, saga_options(c)),
        outbox(redis, outbox_options(c, d, consumer)),
        deadlines(redis),
        limiter(redis, limiter_options(c)),
        parking(redis, c.redis_partitions),
        broker(brokers::open_broker(c)),
        sink_owner(broker->make_sink(l, "sagaflow-worker-publish")),
        sink(*sink_owner),
        source_owner(broker->make_source(l, brokers::Role::saga, sink, "sagaflow-worker-consume",
                                         index_dead_letters(dead_letters))),
        source(*source_owner),
        pipeline(
            d, repo, admission, sink_port, timers, clock, registry,
            [this](std::uint64_t tag, Verdict v) { source.settle(tag, std::move(v)); },
            PipelineOptions{c.max_message_bytes, 50, broker->saga_intake_has_outcomes()}),
        sweeper(deadlines, c.redis_partitions, std::max<Millis>(c.step_timeout_ms, 5000), pipeline),
        starter(parking, admission, kParkedLeaseMs, pipeline,
                registry.gauge("sagaflow_starts_parked",
                               "Saga starts parked over their store's rate limit (cluster-wide: "
                               "aggregate with max, not sum)"),
                timers),
        relay(
            outbox, sagas, deadlines, clock, d, sink_port,
            registry.counter("sagaflow_outbox_resent_total", "Outbox entries re-sent by the relay"),
            registry.counter("sagaflow_outbox_dropped_total",
                             "Outbox entries taken over but no longer wanted by their saga"),
            [this](int p, const std::string& id) { return pipeline.holds(p, id); }),
        http(
            l,
            [this](const http::Request& r, http::Respond respond) { serve(r, std::move(respond)); },
            http::Limits{.max_body_bytes = 64 * 1024,
                         .header_timeout_ms = c.http_header_timeout_ms,
                         .max_connections = static_cast<unsigned>(c.http_max_connections)}),
        stuck(registry.gauge("sagaflow_sagas_stuck", "Sagas parked in state stuck (cluster-wide)")),
        ready(registry.gauge("sagaflow_ready", "1 while broker and Redis are connected")) {}

  bool is_ready() const { return redis.connected() && source.connected() && sink.connected(); }

  // One place decides whether intake runs.
  void update_intake() {
    ready.set(is_ready() ? 1 : 0);
    if (draining) return;
    const bool hold =
        !redis.connected() || !clock.synced() || pipeline.degraded() || !sink.can_publish();
    if (hold && !source.paused()) {
      log::warn("intake paused", {{"redis", redis.connected() ? "up" : "down"},
                                  {"clock", clock.synced() ? "synced" : "waiting for Redis TIME"},
                                  {"pipeline", pipeline.degraded() ? "backing off" : "ok"},
                                  {"sink", sink.can_publish() ? "ok" : "window full"}});
      source.pause();
    } else if (!hold && source.paused()) {
      log::info("intake resumed");
      source.resume();
    }
  }

  void serve(const http::Request& r, http::Respond respond) {
    if (r.path == "/metrics") {
      respond({200, "text/plain; version=0.0.4; charset=utf-8", registry.render()});
    } else if (r.path == "/healthz") {
      respond({200, "text/plain; charset=utf-8", "ok\n"});
    } else if (r.path == "/readyz") {
      const bool ok = is_ready();
      respond({ok ? 200 : 503, "text/plain; charset=utf-8",
               fmt::format("redis {}\nbroker consume {}\nbroker publish {}\n",
                           redis.connected() ? "up" : "down", source.connected() ? "up" : "down",
                           sink.connected() ? "up" : "down")});
    } else {
      respond({404, "text/plain; charset=utf-8", "not found\n"});
    }
  }

  Status start() {
    redis.on_connection([this](bool up) {
      log::info(up ? "redis connected" : "redis disconnected", {{"redis", config.redis_url}});
      if (up) clock.sync([this] { update_intake(); });
      update_intake();
    });
    sink.on_state_change([this](bool up) {
      if (up) broker_up_since = uv_now(loop);
      update_intake();
    });
    sink.on_writable([this] { update_intake(); });
    source.on_state_change([this](bool up) {
      if (up) broker_up_since = uv_now(loop);
      log::info(up ? "broker connected" : "broker disconnected",
                {{"intake", broker->describe_intake(brokers::Role::saga)}});
      update_intake();
    });
    pipeline.on_degraded_change([this](bool) { update_intake(); });

    if (!config.metrics_addr.disabled) {
      if (auto st = http.listen(config.metrics_addr.host, config.metrics_addr.port); !st) return st;
    }
    redis.start();
    sink.start();
    source.start([this](const Delivery& d) { pipeline.on_delivery(d.tag, d.body); });
    update_intake();

    // No timeouts while commands cannot reach the broker or replies cannot be read, nor right
    // after it is back, until the relay has re-sent what the outage held up (and moved those
    // steps' deadlines).
    timers.every(kSweepEveryMs, [this] {
      // A Kafka rebalance revokes every partition until the group has settled: replies cannot
      // be read then either, so it counts as an outage of the source.
      if (!source.reading()) {
        source_was_reading = false;
      } else if (!source_was_reading) {
        source_was_reading = true;
        broker_up_since = uv_now(loop);
      }
      const bool settled = uv_now(loop) - broker_up_since >= sweep_grace_ms(definition);
      const bool broker_up = sink.connected() && source.reading();
      if (!draining && redis.connected() && broker_up && settled) sweeper.tick();
    });
    // Parked starts begin as their stores' buckets allow; while the broker is away they wait
    // (their first commands could not go out).
    timers.every(kParkedEveryMs, [this] {
      if (!draining && redis.connected() && sink.connected()) starter.tick();
    });
    timers.every(relay_every_ms(definition), [this] {
      if (!draining && redis.connected() && sink.connected()) relay.tick();
    });
    timers.every(kClockSyncEveryMs, [this] { clock.sync([this] { update_intake(); }); });
    timers.every(kStatsEveryMs, [this] {
      if (!redis.connected()) return;
      sagas.status_counts([this](Result<std::map<std::string, std::int64_t>> counts) {
        if (!counts) return;
        auto it = counts->find("stuck");
        stuck.set(it == counts->end() ? 0 : static_cast<double>(it->second));
      });
    });

    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = this;
    sigint.data = this;
    auto on_signal = [](uv_signal_t* s, int signum) {
      log::info("signal received: draining", {{"signal", signum}});
      static_cast<Impl*>(s->data)->shutdown();
    };
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    log::info("worker started", {{"consumer", consumer},
                                 {"intake", broker->describe_intake(brokers::Role::saga)},
                                 {"prefetch", config.prefetch},
                                 {"partitions", config.redis_partitions}});
    return Status::success();
  }

  // Drain: the source stops taking deliveries and waits for the in-flight ones to be settled
  // (the pipeline settles them as Redis answers); then the timeouts in progress finish, the
  // sink flushes its confirms, and everything closes.
  void shutdown() noexcept {
    if (draining) return;
    draining = true;
    starter.stop();
    const auto started = std::chrono::steady_clock::now();
    arm_exit_backstop(loop, kShutdownLimitMs);
    timers.after(kDrainLimitMs, [this] {
      log::warn(
          "drain limit reached; closing with deliveries unsettled (the broker redelivers them)",
          {{"in_flight", static_cast<std::uint64_t>(pipeline.in_flight())}});
      close_all();
    });
    source.stop([this, started] {
      log::info(
          "intake drained",
          {{"ms", static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - started)
                                                .count())}});
      wait_pipeline_then_close();
    });
  }

  void wait_pipeline_then_close() {
    if (pipeline.in_flight() == 0 || closed) return close_all();
    timers.after(20, [this] { wait_pipeline_then_close(); });
  }

  void close_all() noexcept {
    if (closed) return;
    closed = true;
    sink.stop([this] {
      timers.stop();
      source.stop();
      redis.stop();
      http.stop();
      uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
      log::info("worker stopped");
    });
  }
};

Worker::Worker(uv_loop_s* loop, const Config& config, const SagaDefinition& definition)
    : impl_(std::make_unique<Impl>(loop, config, definition)) {}
Worker::~Worker() = default;
Status Worker::start() {
  return impl_->start();
}
void Worker::shutdown() noexcept {
  impl_->shutdown();
}

}  // namespace sagaflow::app
