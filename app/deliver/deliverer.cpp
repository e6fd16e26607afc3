#include "app/deliver/deliverer.hpp"

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <simdjson.h>

#include <fmt/format.h>

#include "app/impl/dead_letter_listener.hpp"
#include "app/impl/delivery_json.hpp"
#include "app/impl/exit_backstop.hpp"
#include "app/impl/redis_clock.hpp"
#include "app/worker/uv_timers.hpp"
#include "brokers/broker.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "delivery/address_guard.hpp"
#include "delivery/breaker.hpp"
#include "delivery/endpoint.hpp"
#include "delivery/record.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/webhook_signature.hpp"
#include "store/dead_letters.hpp"
#include "store/deliveries.hpp"
#include "store/rate_limiter.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::app {
namespace {

using delivery::DeliveryRecord;
using delivery::DeliveryState;
using delivery::Endpoint;

constexpr Millis kSendEveryMs = 50;
constexpr Millis kEndpointsEveryMs = 2000;  // changes seen within 5 s (contract)
constexpr Millis kGaugesEveryMs = 5000;
constexpr Millis kDisabledWaitMs = 5000;  // a disabled endpoint's deliveries look again
constexpr Millis kPoolFullWaitMs = 1000;  // the endpoint's pool is full: look again
constexpr Millis kUnknownWaitMs = 1000;   // an endpoint newer than this worker's cache
constexpr Millis kClockSyncEveryMs = 2000;
constexpr Millis kRecordRetryMs = 500;       // Redis failed while recording an event
constexpr std::size_t kMaxPerEndpoint = 16;  // concurrent attempts per endpoint
constexpr std::size_t kMaxInFlight = 1024;   // concurrent attempts in all
// Claimed deliveries waiting in memory for a slot of their endpoint: at most what the endpoint
// gets through in kQueueBudgetMs at its observed latency (16 slots / latency), so a claim's
// lease (timeout + kLeaseMarginMs) covers the wait; beyond that they wait in Redis.
constexpr Millis kQueueBudgetMs = 10000;
constexpr Millis kLeaseMarginMs = 20000;
constexpr std::size_t kMaxQueuedPerEndpoint = 4096;
constexpr std::size_t kMaxQueued = 16384;  // all endpoints
constexpr Millis kShutdownMs = 7000;
constexpr Millis kShutdownLimitMs = 9300;  // exit 0 within SIGTERM's 10 s in every case

// The fields a delivery needs from an event: it is forwarded byte for byte, so nothing else is
// validated here (any event type may have subscribers).
struct EventHead {
  std::string id, type, store_id;
};

// `parser` is reused across events: its buffers are allocated once, not per event.
Result<EventHead> parse_head(simdjson::dom::parser& parser, std::string_view body) {
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS)
    return make_error(Errc::malformed_json, "the event is not valid JSON");
  if (!root.is_object()) return make_error(Errc::malformed_json, "the event is not a JSON object");
  EventHead h;
  std::string_view v;
  if (root["id"].get_string().get(v) != simdjson::SUCCESS || v.empty())
    return make_error(Errc::invalid_event, "the event has no string \"id\"");
  h.id = std::string(v);
  if (root["type"].get_string().get(v) != simdjson::SUCCESS || v.empty())
    return make_error(Errc::invalid_event, "the event has no string \"type\"");
  h.type = std::string(v);
  if (root["store_id"].get_string().get(v) == simdjson::SUCCESS) h.store_id = std::string(v);
  return h;
}

}  // namespace

struct Deliverer::Impl {
  uv_loop_t* loop;
  const Config& config;
  delivery::Schedule schedule;
  delivery::BreakerConfig breaker_config;
  metrics::Registry registry;
  UvTimers timers;
  store::RedisClient redis;
  store::DeadLetterIndex dead_letters{redis};
  RedisClock clock{redis};  // due times and the breaker's times are compared with Redis TIME
  store::Deliveries deliveries;
  store::RateLimiter limiter;
  std::unique_ptr<brokers::Broker> broker;
  std::unique_ptr<Sink> sink_owner;
  std::unique_ptr<Source> source_owner;
  std::unique_ptr<http::Client> client;
  http::Server metrics_http;
  std::mt19937_64 rng{std::random_device{}()};
  simdjson::dom::parser event_parser;

  std::map<std::string, Endpoint> endpoints;  // the cache, refreshed every 2 s
  bool endpoints_known = false;
  bool draining = false;
  bool stopped = false;
  int next_partition = 0;
  bool claiming = false;
  std::size_t attempts_in_flight = 0;
  std::size_t writes_in_flight = 0;  // outcomes being written (the drain waits for them)
  struct Job;
  struct Lane {
    std::size_t active = 0;  // jobs started (rate limit, breaker, attempt), not done
    std::deque<std::shared_ptr<Job>> queued;  // claimed, waiting for a slot
    double latency_ms = 1000;  // moving average of its attempts (pessimistic until measured)
  };
  std::unordered_map<std::string, Lane> lanes;  // by endpoint id
  std::size_t queued_total = 0;

  metrics::Counter& delivered;
  metrics::Counter& failed_attempt;
  metrics::Counter& dead;
  metrics::Histogram& seconds;
  metrics::Gauge& circuit_open;
  metrics::Gauge& waiting;
  metrics::Gauge& ready;

  static store::RedisClientOptions redis_options(const Config& c) {
    store::RedisClientOptions o;
    o.endpoint = c.redis;
    o.name = "sagaflow-deliver";
    return o;
  }
  static store::RateLimiterOptions limiter_options(const Config& c) {
    store::RateLimiterOptions o;
    o.plans = c.plans;
    o.default_plan = c.default_plan;
    return o;
  }
  http::ClientOptions client_options() const {
    http::ClientOptions o;
    o.max_per_pool = kMaxPerEndpoint;
    o.max_total = kMaxInFlight;
    if (!config.delivery_allow_private) {
      o.allow_address = [](const sockaddr* a) { return !delivery::is_private_address(a); };
    }
    return o;
  }

  Impl(uv_loop_t* l, const Config& c, delivery::Schedule s)
      : loop(l),
        config(c),
        schedule(std::move(s)),
        timers(l),
        redis(l, redis_options(c)),
        deliveries(redis, deliveries_options(c)),
        limiter(redis, limiter_options(c)),
        metrics_http(
            l,
            [this](const http::Request& r, http::Respond respond) { serve(r, std::move(respond)); },
            http::Limits{.max_body_bytes = 64 * 1024,
                         .header_timeout_ms = c.http_header_timeout_ms,
                         .max_connections = static_cast<unsigned>(c.http_max_connections)}),
        delivered(registry.counter("sagaflow_deliveries_total", "Outgoing webhook deliveries",
                                   R"(outcome="delivered")")),
        failed_attempt(registry.counter("sagaflow_deliveries_total", "Outgoing webhook deliveries",
                                        R"(outcome="failed_attempt")")),
        dead(registry.counter("sagaflow_deliveries_total", "Outgoing webhook deliveries",
                              R"(outcome="dead")")),
        seconds(registry.histogram("sagaflow_delivery_seconds",
                                   "One outgoing webhook attempt, request to answer",
                                   {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        circuit_open(registry.gauge("sagaflow_endpoint_circuit_open",
                                    "Endpoints with an open circuit (cluster-wide: aggregate "
                                    "with max)")),
        waiting(registry.gauge("sagaflow_deliveries_waiting",
                               "Deliveries waiting for an attempt (cluster-wide: aggregate with "
                               "max)")),
        ready(registry.gauge("sagaflow_ready", "1 while broker and Redis are connected")) {
    breaker_config.failures_to_open = c.breaker_failures;
    breaker_config.open_ms = c.breaker_open_ms;
    breaker_config.probe_lease_ms = c.delivery_timeout_ms + 5000;
    broker = brokers::open_broker(c);
    sink_owner = broker->make_sink(l, "sagaflow-deliver-publish");
    source_owner =
        broker->make_source(l, brokers::Role::deliver, *sink_owner, "sagaflow-deliver-consume",
                            index_dead_letters(dead_letters));
    client = std::make_unique<http::Client>(l, client_options());
  }

  Source& source() { return *source_owner; }

  void serve(const http::Request& r, http::Respond respond) {
    if (r.path == "/metrics") {
      respond({200, "text/plain; version=0.0.4; charset=utf-8", registry.render()});
    } else if (r.path == "/healthz") {
      respond({200, "text/plain; charset=utf-8", "ok\n"});
    } else if (r.path == "/readyz") {
      const bool ok = is_ready();
      respond({ok ? 200 : 503, "text/plain; charset=utf-8",
               fmt::format("redis {}\nbroker consume {}\nbroker publish {}\n",
                           redis.connected() ? "up" : "down", source().connected() ? "up" : "down",
                           sink_owner->connected() ? "up" : "down")});
    } else {
      respond({404, "text/plain; charset=utf-8", "not found\n"});
    }
  }

  bool is_ready() { return redis.connected() && source().connected() && sink_owner->connected(); }

  void update_intake() {
    ready.set(is_ready() ? 1 : 0);
    if (draining) return;
    const bool hold = !redis.connected() || !endpoints_known || !clock.synced();
    if (hold && !source().paused()) {
      source().pause();
    } else if (!hold && source().paused()) {
      source().resume();
    }
  }

  // --- endpoints ---------------------------------------------------------------------------

  void refresh_endpoints() {
    if (!redis.connected()) return;
    deliveries.endpoints([this](Result<std::map<std::string, std::string>> r) {
      if (!r) return;  // Redis away: the cache holds; the next tick tries again
      std::map<std::string, Endpoint> fresh;
      for (const auto& [id, json] : r.value()) {
        auto e = delivery::endpoint_from_json(json);
        if (!e) {
          log::warn("unreadable endpoint record skipped",
                    {{"endpoint", id}, {"error", e.error().detail}});
          continue;
        }
        fresh.emplace(id, std::move(e.value()));
      }
      endpoints = std::move(fresh);
      if (!endpoints_known) {
        endpoints_known = true;
        log::info("endpoints loaded", {{"count", static_cast<std::uint64_t>(endpoints.size())}});
        update_intake();
      }
    });
  }

  // --- intake ------------------------------------------------------------------------------

  void on_event(const Delivery& d) {
    auto head = parse_head(event_parser, d.body);
    if (!head) {
      source().settle(d.tag, Verdict::dead_letter(head.error().code, head.error().detail));
      return;
    }
    std::vector<std::pair<std::string, std::string>> records;
    const std::string initial = delivery::to_json(DeliveryRecord{});
    for (const auto& [id, e] : endpoints) {
      if (e.state == delivery::EndpointState::enabled &&
          delivery::endpoint_wants(e, head->type, head->store_id)) {
        records.emplace_back(id, initial);
      }
    }
    if (records.empty()) {
      source().settle(d.tag, Verdict::ack());
      return;
    }
    record(d.tag, std::move(head.value()), std::string(d.body), std::move(records));
  }

  void record(std::uint64_t tag, EventHead head, std::string body,
              std::vector<std::pair<std::string, std::string>> records) {
    deliveries.record(
        head.id, head.type, body, records,
        [this, tag, head, body, records](Result<bool> r) mutable {
          if (r) {
            source().settle(tag, Verdict::ack());
            if (r.value()) send_soon();
            return;
          }
          // Transient: the event stays unsettled (it holds its place) and is recorded again.
          log::warn("recording deliveries failed; will retry",
                    {{"event_id", head.id}, {"error", r.error().detail}});
          timers.after(kRecordRetryMs, [this, tag, head = std::move(head), body = std::move(body),
                                        records = std::move(records)]() mutable {
            if (stopped) return;
            record(tag, std::move(head), std::move(body), std::move(records));
          });
        });
  }

  // --- sending -----------------------------------------------------------------------------

  void send_soon() {
    timers.after(0, [this] { send_tick(); });
  }

  void send_tick() {
    if (draining || claiming || !redis.connected() || !endpoints_known || !clock.synced()) return;
    const std::size_t held = attempts_in_flight + queued_total;
    const std::size_t room = kMaxQueued > held ? std::min(kMaxQueued - held, kMaxInFlight) : 0;
    if (room == 0) return;
    claiming = true;
    const int partitions = deliveries.partitions();
    auto left = std::make_shared<int>(partitions);
    const int per =
        static_cast<int>(std::max<std::size_t>(1, room / static_cast<std::size_t>(partitions)));
    for (int i = 0; i < partitions; ++i) {
      const int p = (next_partition + i) % partitions;
      deliveries.claim_due(p, per, config.delivery_timeout_ms + kLeaseMarginMs,
                           [this, left](Result<std::vector<store::DueDelivery>> r) {
                             if (r) {
                               for (auto& due : r.value()) process(std::move(due));
                             }
                             if (--*left == 0) claiming = false;
                           });
    }
    next_partition = (next_partition + 1) % partitions;
  }

  struct Job {
    store::DueDelivery due;
    DeliveryRecord record;
    Endpoint endpoint;
    delivery::Permit permit = delivery::Permit::attempt;
    std::string breaker_text;  // as read (for the compare-and-set after the attempt)
  };

  void process(store::DueDelivery due) {
    const Millis now = clock.now_ms();
    auto rec = delivery::record_from_json(due.record);
    if (!rec || rec->state != DeliveryState::pending) {
      // Nothing to do (delivered, dead, or unreadable): not due again.
      deliveries.update(due.event_id, due.endpoint_id, due.record, 0, due.record, {});
      return;
    }
    const auto it = endpoints.find(due.endpoint_id);
    if (it == endpoints.end()) {
      // Removed, or newer than this worker's cache: only a removed one's deliveries are dropped.
      deliveries.has_endpoint(due.endpoint_id, [this, due](Result<bool> exists) {
        if (exists && !exists.value()) {
          deliveries.update(due.event_id, due.endpoint_id, due.record, 0, due.record, {});
        } else {
          deliveries.postpone(due.event_id, due.endpoint_id, clock.now_ms() + kUnknownWaitMs,
                              clock.now_ms());
        }
      });
      return;
    }
    if (it->second.state != delivery::EndpointState::enabled) {
      deliveries.postpone(due.event_id, due.endpoint_id, now + kDisabledWaitMs, now);
      return;
    }
    auto job = std::make_shared<Job>();
    job->due = std::move(due);
    job->record = std::move(rec.value());
    job->endpoint = it->second;
    Lane& lane = lanes[job->endpoint.id];
    if (lane.active < kMaxPerEndpoint) return start_job(job);
    // Its slots are busy: wait in memory if the endpoint gets through its queue well within the
    // lease, else in Redis (a slow or hanging endpoint keeps few claimed; the others go on).
    const std::size_t cap =
        std::clamp<std::size_t>(static_cast<std::size_t>(static_cast<double>(kMaxPerEndpoint) *
                                                         static_cast<double>(kQueueBudgetMs) /
                                                         std::max(1.0, lane.latency_ms)),
                                0, kMaxQueuedPerEndpoint);
    if (lane.queued.size() < cap) {
      lane.queued.push_back(std::move(job));
      ++queued_total;
      return;
    }
    deliveries.postpone(job->due.event_id, job->due.endpoint_id, now + kPoolFullWaitMs, now);
  }

  void start_job(const std::shared_ptr<Job>& job) {
    ++lanes[job->endpoint.id].active;
    ++attempts_in_flight;  // held from here: a job is always finished by finish_job()
    if (job->endpoint.plan.empty()) return check_breaker(job);
    const RatePlan* plan = config.find_plan(job->endpoint.plan);
    if (plan == nullptr) return check_breaker(job);  // an unknown plan limits nothing
    limiter.admit_with(
        StoreId("ep:" + job->endpoint.id), *plan, [this, job](Result<store::Admission> a) {
          if (!a) return wait(job, clock.now_ms() + 1000);
          if (!a->allowed)
            return wait(job, clock.now_ms() + std::max<Millis>(1, a->retry_after_ms));
          check_breaker(job);
        });
  }

  void wait(const std::shared_ptr<Job>& job, Millis at) {
    deliveries.postpone(job->due.event_id, job->due.endpoint_id, at, clock.now_ms());
    finish_job(*job);
  }

  void finish_job(const Job& job) {
    if (attempts_in_flight > 0) --attempts_in_flight;
    if (auto it = lanes.find(job.endpoint.id); it != lanes.end()) {
      Lane& lane = it->second;
      if (lane.active > 0) --lane.active;
      if (!lane.queued.empty() && !draining) {
        auto next = std::move(lane.queued.front());
        lane.queued.pop_front();
        --queued_total;
        start_job(next);
      } else if (lane.active == 0 && lane.queued.empty()) {
        lanes.erase(it);
      }
    }
    if (draining && attempts_in_flight == 0 && writes_in_flight == 0) close_all();
  }

  // A closed circuit without failures, as read less than kBreakerFreshMs ago, is not read again
  // for every attempt (another worker that opens it is seen within that time).
  struct BreakerSeen {
    Millis at = 0;
    std::string text;
  };
  std::unordered_map<std::string, BreakerSeen> breaker_seen;
  static constexpr Millis kBreakerFreshMs = 200;

  void check_breaker(const std::shared_ptr<Job>& job) {
    if (auto it = breaker_seen.find(job->endpoint.id);
        it != breaker_seen.end() && clock.now_ms() - it->second.at < kBreakerFreshMs) {
      job->permit = delivery::Permit::attempt;
      job->breaker_text = it->second.text;
      return attempt(job);
    }
    deliveries.breaker(job->endpoint.id, [this, job](Result<std::string> text) {
      if (!text) return wait(job, clock.now_ms() + 1000);
      delivery::BreakerState state = delivery::decode(text.value());
      const delivery::BreakerState before = state;
      const Millis now = clock.now_ms();
      const delivery::PermitResult p = delivery::permit(state, breaker_config, now);
      if (p.permit == delivery::Permit::wait) return wait(job, std::max(p.retry_at_ms, now + 1));
      job->permit = p.permit;
      if (state == before) {
        job->breaker_text = text.value();
        if (state.circuit == delivery::Circuit::closed && state.failures == 0) {
          breaker_seen[job->endpoint.id] = BreakerSeen{now, text.value()};
        }
        return attempt(job);
      }
      // The probe: claimed by compare-and-set, so exactly one worker gets it.
      const std::string next = delivery::encode(state);
      deliveries.set_breaker(job->endpoint.id, text.value(), next,
                             [this, job, next](Result<bool> won) {
                               if (!won || !won.value()) return wait(job, clock.now_ms() + 100);
                               job->breaker_text = next;
                               attempt(job);
                             });
    });
  }

  void attempt(const std::shared_ptr<Job>& job) {
    const Millis now = clock.now_ms();
    const std::int64_t ts = now / 1000;
    const std::vector<std::string> secrets = delivery::signing_secrets(job->endpoint, now);
    http::ClientRequest req;
    req.pool = job->endpoint.id;
    req.url = job->endpoint.url;
    req.body = job->due.body;
    req.timeout_ms = config.delivery_timeout_ms;
    req.headers = {
        {"Content-Type", "application/json"},
        {"webhook-id", job->due.event_id},
        {"webhook-timestamp", std::to_string(ts)},
        {"webhook-signature", http::sign_standard(secrets, job->due.event_id, ts, job->due.body)},
        {"X-Sagaflow-Signature", http::sign(secrets, ts, job->due.body)},
    };
    client->post(std::move(req),
                 [this, job, now](http::ClientResponse r) { on_answer(job, now, std::move(r)); });
  }

  void on_answer(const std::shared_ptr<Job>& job, Millis started, http::ClientResponse r) {
    if (stopped) return finish_job(*job);  // aborted by the shutdown: the lease runs out
    const Millis now = clock.now_ms();
    seconds.observe(static_cast<double>(r.elapsed_ms) / 1000.0);
    if (auto it = lanes.find(job->endpoint.id); it != lanes.end()) {
      // A timeout counts as the whole timeout: a hanging endpoint keeps its queue short.
      const double ms = r.timed_out ? static_cast<double>(config.delivery_timeout_ms)
                                    : static_cast<double>(std::max<Millis>(1, r.elapsed_ms));
      it->second.latency_ms = 0.8 * it->second.latency_ms + 0.2 * ms;
    }
    const bool ok = r.error.empty() && r.status >= 200 && r.status < 300;
    std::optional<Millis> retry_after;
    if (r.error.empty() && (r.status == 429 || r.status == 503) && !r.retry_after.empty()) {
      retry_after = delivery::parse_retry_after(r.retry_after, now);
    }
    // Breaker: every attempt counts but those a Retry-After explains.
    if (!retry_after) {
      record_breaker(job->endpoint.id, job->permit, ok, 3);
    } else if (job->permit == delivery::Permit::probe) {
      // A probe answered "later": give the probe back (open again, until the Retry-After).
      record_breaker(job->endpoint.id, job->permit, false, 3);
    }
    if (r.error.empty() && r.status == 410) disable_gone(job->endpoint.id);

    DeliveryRecord& rec = job->record;
    rec.attempts++;
    rec.scheduled++;
    rec.last_status = static_cast<int>(r.status);
    rec.add(delivery::Attempt{started, static_cast<int>(r.status),
                              r.error.empty() ? std::string() : r.error,
                              std::max<Millis>(0, r.elapsed_ms)});
    Millis due = 0;
    if (ok) {
      rec.state = DeliveryState::delivered;
      rec.next_at_ms = 0;
      delivered.inc();
    } else {
      failed_attempt.inc();
      const auto delay = delivery::next_delay_ms(schedule, rec.scheduled, rng());
      if (!delay) {
        rec.state = DeliveryState::dead;
        rec.next_at_ms = 0;
        dead.inc();
        log::warn("delivery dead after its last attempt", {{"event_id", job->due.event_id},
                                                           {"endpoint", job->endpoint.id},
                                                           {"attempts", rec.attempts},
                                                           {"last_status", rec.last_status},
                                                           {"error", r.error}});
      } else {
        due = now + std::max(*delay, retry_after.value_or(0));
        rec.next_at_ms = due;
      }
    }
    log::debug("delivery attempt", {{"event_id", job->due.event_id},
                                    {"endpoint", job->endpoint.id},
                                    {"status", static_cast<std::int64_t>(r.status)},
                                    {"error", r.error},
                                    {"ms", static_cast<std::int64_t>(r.elapsed_ms)}});
    // Written only over the record as claimed: if the lease ran out and another worker made the
    // attempt meanwhile, or the delivery was replayed, theirs stands.
    ++writes_in_flight;
    deliveries.update(job->due.event_id, job->due.endpoint_id, delivery::to_json(rec), due,
                      job->due.record, [this](Result<bool>) {
                        --writes_in_flight;
                        if (draining && attempts_in_flight == 0 && writes_in_flight == 0)
                          close_all();
                      });
    finish_job(*job);  // the slot is free once the answer is in
  }

  // Read-modify-write of the shared breaker state; a lost race re-reads (a few times).
  void record_breaker(const std::string& endpoint_id, delivery::Permit permit, bool ok, int tries) {
    if (!ok) breaker_seen.erase(endpoint_id);
    if (ok && permit == delivery::Permit::attempt && breaker_seen.count(endpoint_id) != 0) return;
    deliveries.breaker(
        endpoint_id, [this, endpoint_id, permit, ok, tries](Result<std::string> text) {
          if (!text) return;
          delivery::BreakerState s = delivery::decode(text.value());
          const delivery::BreakerState before = s;
          delivery::record(s, breaker_config, permit, ok, clock.now_ms());
          if (s == before) return;
          deliveries.set_breaker(endpoint_id, text.value(), delivery::encode(s),
                                 [this, endpoint_id, permit, ok, tries](Result<bool> won) {
                                   if (won && !won.value() && tries > 1)
                                     record_breaker(endpoint_id, permit, ok, tries - 1);
                                 });
        });
  }

  void disable_gone(const std::string& endpoint_id) {
    auto it = endpoints.find(endpoint_id);
    if (it == endpoints.end() || it->second.state == delivery::EndpointState::disabled_gone) return;
    it->second.state = delivery::EndpointState::disabled_gone;
    log::warn("endpoint answered 410 Gone: disabled", {{"endpoint", endpoint_id}});
    // From the stored record (the cache may be older than a rotate or an edit).
    deliveries.endpoints([this, endpoint_id](Result<std::map<std::string, std::string>> r) {
      if (!r) return;
      auto found = r->find(endpoint_id);
      if (found == r->end()) return;
      auto e = delivery::endpoint_from_json(found->second);
      if (!e) return;
      e->state = delivery::EndpointState::disabled_gone;
      deliveries.put_endpoint(endpoint_id, delivery::to_json(e.value()), [](Status) {});
    });
  }

  void update_gauges() {
    if (!redis.connected()) return;
    deliveries.waiting([this](Result<std::int64_t> n) {
      if (n) waiting.set(static_cast<double>(n.value()));
    });
    std::vector<std::string> ids;
    for (const auto& [id, e] : endpoints) ids.push_back(id);
    deliveries.breakers(ids, [this](Result<std::vector<std::string>> states) {
      if (!states) return;
      int open = 0;
      for (const auto& t : states.value())
        open += delivery::decode(t).circuit != delivery::Circuit::closed;
      circuit_open.set(open);
    });
  }

  // --- life cycle ----------------------------------------------------------------------------

  Status start() {
    redis.on_connection([this](bool up) {
      log::info(up ? "redis connected" : "redis disconnected", {{"redis", config.redis_url}});
      if (up) {
        refresh_endpoints();
        clock.sync([this] { update_intake(); });
      }
      update_intake();
    });
    sink_owner->on_state_change([this](bool) { update_intake(); });
    source().on_state_change([this](bool up) {
      log::info(up ? "broker connected" : "broker disconnected",
                {{"intake", broker->describe_intake(brokers::Role::deliver)}});
      update_intake();
    });
    if (!config.metrics_addr.disabled) {
      if (auto st = metrics_http.listen(config.metrics_addr.host, config.metrics_addr.port); !st)
        return st;
    }
    redis.start();
    sink_owner->start();
    source().start([this](const Delivery& d) { on_event(d); });
    update_intake();
    timers.every(kEndpointsEveryMs, [this] { refresh_endpoints(); });
    timers.every(kSendEveryMs, [this] { send_tick(); });
    timers.every(kGaugesEveryMs, [this] { update_gauges(); });
    timers.every(kClockSyncEveryMs, [this] { clock.sync([this] { update_intake(); }); });
    log::info("deliver started",
              {{"intake", broker->describe_intake(brokers::Role::deliver)},
               {"endpoints_refresh_ms", static_cast<std::int64_t>(kEndpointsEveryMs)}});
    return Status::success();
  }

  void shutdown() noexcept {
    if (draining) return;
    draining = true;
    arm_exit_backstop(loop, kShutdownLimitMs);
    timers.after(kShutdownMs, [this] { close_all(); });
    source().stop([this] {
      if (attempts_in_flight == 0 && writes_in_flight == 0) close_all();
    });
  }

  void close_all() noexcept {
    if (stopped) return;
    stopped = true;
    client->stop([this] {
      sink_owner->stop([this] {
        timers.stop();
        source().stop();
        redis.stop();
        metrics_http.stop();
        log::info("deliver stopped");
      });
    });
  }
};

Deliverer::Deliverer(uv_loop_s* loop, const Config& config, delivery::Schedule schedule)
    : impl_(std::make_unique<Impl>(loop, config, std::move(schedule))) {}
Deliverer::~Deliverer() = default;
Status Deliverer::start() {
  return impl_->start();
}
void Deliverer::shutdown() noexcept {
  impl_->shutdown();
}

}  // namespace sagaflow::app
