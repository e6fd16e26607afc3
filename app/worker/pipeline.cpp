#include "app/worker/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "app/worker/order_lanes.hpp"
#include "core/log.hpp"
#include "sagas/engine.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {

namespace {
using topology::kCommandsExchange;
using topology::kEventsExchange;
constexpr Millis kMinBackoffMs = 50;
constexpr Millis kMaxBackoffMs = 2000;
}  // namespace

struct Pipeline::Job {
  enum class Kind : std::uint8_t { delivery, deadline, parked_start };
  Kind kind = Kind::delivery;
  std::uint64_t tag = 0;
  Event event;  // deliveries
  OrderId order_id;
  int conflicts = 0;
  int failures = 0;           // transient failures in a row
  int waits = 0;              // retry_later() rounds
  bool admitted = false;      // order.created: the rate limiter let it start
  bool read_first = false;    // order.created: read the saga before committing (a cluster)
  store::GcraParams plan;     // order.created: its store's plan, admitted in the commit
  bool was_limited = false;   // counted once in sagaflow_rate_limited_total
  bool must_load = false;     // a conflict was seen: the next one counts
  bool stored_order = false;  // the loaded record has its order facts field (format 2)
  bool fresh = false;         // stepped again on a saga re-read after forget()
  std::chrono::steady_clock::time_point started;
};

struct Pipeline::Impl {
  const SagaDefinition& def;
  SagaRepository& repo;
  StartAdmission& admission;
  MessageSink& sink;
  Timers& timers;
  const Clock& clock;
  SettleFn settle;
  PipelineOptions options;
  EnvelopeParser parser;
  OrderLanes<Job> lanes;
  std::size_t in_flight = 0;
  std::size_t failing = 0;  // jobs currently backing off after a dependency failure
  std::function<void(bool)> degraded_change;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  // Outbox entries this worker's sink is publishing, by partition (each partition is its own
  // stream, so stream ids repeat across them): the relay leaves them alone, however long the
  // sink takes (with a large prefetch, longer than the relay's idle time).
  std::unordered_map<int, std::unordered_set<std::string>> held;
  std::map<std::string, std::int64_t, std::less<>> parked_stores;  // from the scheduler

  // Metrics (CONTRACT.md section 8); handles resolved once.
  metrics::Registry& registry;
  metrics::Counter* consumed[kEventTypeCount] = {};
  metrics::Counter& acked;
  metrics::Counter& retried;
  metrics::Counter& dedup_hits;
  metrics::Counter& rate_limited;
  metrics::Counter& sagas_started;
  metrics::Counter& finished_confirmed;
  metrics::Counter& finished_failed;
  metrics::Counter& conflicts;
  metrics::Counter& commands_sent;
  metrics::Counter& compensations_sent;
  metrics::Histogram& processing;

  Impl(const SagaDefinition& d, SagaRepository& r, StartAdmission& a, MessageSink& s, Timers& t,
       const Clock& c, metrics::Registry& m, SettleFn st, PipelineOptions o)
      : def(d),
        repo(r),
        admission(a),
        sink(s),
        timers(t),
        clock(c),
        settle(std::move(st)),
        options(std::move(o)),
        parser(options.max_message_bytes),
        lanes([this](Job& job) { run(job); }),
        registry(m),
        acked(m.counter("sagaflow_events_acked_total", "Deliveries acknowledged")),
        retried(
            m.counter("sagaflow_events_retried_total", "Deliveries sent back for a later retry")),
        dedup_hits(m.counter("sagaflow_dedup_hits_total", "Events refused as duplicates by id")),
        rate_limited(m.counter("sagaflow_rate_limited_total",
                               "Saga starts delayed by a store's rate limit")),
        sagas_started(m.counter("sagaflow_sagas_started_total", "Sagas started")),
        finished_confirmed(
            m.counter("sagaflow_sagas_finished_total", "Sagas finished", R"(outcome="confirmed")")),
        finished_failed(
            m.counter("sagaflow_sagas_finished_total", "Sagas finished", R"(outcome="failed")")),
        conflicts(m.counter("sagaflow_saga_conflicts_total",
                            "Commits lost to another worker (re-applied)")),
        commands_sent(m.counter("sagaflow_outbox_published_total",
                                "Commands and outcomes confirmed by the broker")),
        compensations_sent(m.counter("sagaflow_compensations_sent_total",
                                     "Compensation commands committed (re-sends included)")),
        processing(m.histogram(
            "sagaflow_event_processing_seconds", "From delivery to settlement",
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5})) {
    for (std::size_t i = 0; i < kEventTypeCount; ++i) {
      consumed[i] =
          &m.counter("sagaflow_events_consumed_total", "Deliveries consumed, by event type",
                     fmt::format("type=\"{}\"", to_string(static_cast<EventType>(i))));
    }
  }

  metrics::Counter& failed_by_reason(const std::string& reason) {
    return registry.counter("sagaflow_sagas_failed_total", "Sagas failed, by reason",
                            fmt::format("reason=\"{}\"", reason));
  }

  metrics::Counter& dead_lettered(Errc reason) {
    return registry.counter("sagaflow_events_dead_lettered_total",
                            "Deliveries dead-lettered, by reason",
                            fmt::format("reason=\"{}\"", reason_code(reason)));
  }

  // --- settlement -------------------------------------------------------------------------

  void settle_delivery(Job& job, Verdict s) {
    if (job.kind != Job::Kind::delivery) return;
    switch (s.kind) {
      case Verdict::Kind::ack:
        acked.inc();
        break;
      case Verdict::Kind::retry:
        retried.inc();
        break;
      case Verdict::Kind::dead_letter:
        dead_lettered(s.reason).inc();
        break;
    }
    processing.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - job.started).count());
    settle(job.tag, std::move(s));
  }

  // The job is over: free its order's lane (the next job of that order starts) and keep the
  // job for reuse, so that its Event's strings keep their capacity (no allocation per message
  // once warmed up).
  void finish(Job& job) {
    --in_flight;
    recycle(lanes.finish(job.order_id.view()));
  }

  std::vector<std::unique_ptr<Job>> spare_jobs;
  static constexpr std::size_t kMaxSpareJobs = 1024;
  // A commit's record and order facts are reserved at the largest size written so far (up to
  // kMaxReserve), so that writing them is one allocation each.
  static constexpr std::size_t kMaxReserve = 4096;
  std::size_t record_bytes = 512;
  std::size_t order_bytes = 256;

  std::unique_ptr<Job> new_job(Job::Kind kind) {
    std::unique_ptr<Job> job;
    if (spare_jobs.empty()) {
      job = std::make_unique<Job>();
    } else {
      job = std::move(spare_jobs.back());
      spare_jobs.pop_back();
    }
    job->kind = kind;
    job->tag = 0;
    job->conflicts = 0;
    job->failures = 0;
    job->waits = 0;
    job->admitted = false;
    job->read_first = false;
    job->was_limited = false;
    job->must_load = false;
    job->stored_order = false;
    job->fresh = false;
    job->started = std::chrono::steady_clock::now();
    return job;
  }

  void recycle(std::unique_ptr<Job> job) {
    if (job && spare_jobs.size() < kMaxSpareJobs) spare_jobs.push_back(std::move(job));
  }

  void set_failing(bool now_failing) {
    const bool before = failing > 0;
    failing = now_failing ? failing + 1 : failing - 1;
    const bool after = failing > 0;
    if (before != after && degraded_change) degraded_change(after);
  }

  // A dependency failed: keep the job (and its order's lane), try again with backoff.
  void back_off(Job& job, const Error& e) {
    if (job.failures == 0) set_failing(true);
    ++job.failures;
    const Millis delay = backoff(job.failures);
    log::warn("dependency failed; will retry", {{"order_id", job.order_id.view()},
                                                {"error", reason_code(e.code)},
                                                {"detail", e.detail},
                                                {"retry_in_ms", static_cast<std::int64_t>(delay)}});
    run_after(job, delay);
  }

  static Millis backoff(int rounds) {
    return std::min<Millis>(kMaxBackoffMs, kMinBackoffMs << std::min(rounds, 6));
  }

  void run_after(Job& job, Millis delay) {
    std::weak_ptr<bool> weak = alive;
    timers.after(delay, [this, weak, &job] {
      if (weak.expired()) return;
      run(job);
    });
  }

  // Not a dependency failure (intake goes on): the same job again later, with backoff.
  void retry_later(Job& job, const Error& e) {
    ++job.waits;
    const Millis delay = backoff(job.waits);
    if (job.waits == 1) {
      log::warn("cannot step this saga yet; will retry",
                {{"order_id", job.order_id.view()},
                 {"detail", e.detail},
                 {"retry_in_ms", static_cast<std::int64_t>(delay)}});
    }
    run_after(job, delay);
  }

  void recovered(Job& job) {
    if (job.failures > 0) {
      job.failures = 0;
      set_failing(false);
    }
  }

  // --- the path of one job ----------------------------------------------------------------

  void run(Job& job) {
    // An order.created is committed as a saga start without reading its saga first: the
    // commit finds a saga already there itself (a duplicate of this event, or another saga: a
    // conflict, after which the job reads and steps as any event does), and on one Redis it
    // takes the store's token in the same script, only when it starts a saga (CONTRACT.md
    // section 5: a duplicate order.created, one for an order that has a saga, and one that
    // meets a remembered order.cancelled take none).
    if (job.kind == Job::Kind::delivery && job.event.type == EventType::order_created &&
        !job.read_first && !job.must_load && !job.fresh) {
      return start_unread(job);
    }
    // Every other event reads its saga first. So does a start on a cluster, where the
    // admission is a call of its own: it takes a token only once the read showed no saga.
    repo.load(job.order_id, [this, &job](Result<store::SagaRecord> loaded) {
      if (!loaded) return back_off(job, loaded.error());
      recovered(job);
      on_loaded(job, std::move(loaded.value()));
    });
  }

  bool behind_parked(const StoreId& store) const {
    const auto it = parked_stores.find(store.view());
    return it != parked_stores.end() && it->second > 0;
  }

  void start_unread(Job& job) {
    // Behind the store's parked starts: parked too, so a store's starts begin in order.
    if (behind_parked(job.event.store_id)) return park_start(job);
    admission.plan_for_commit(job.event.store_id,
                              [this, &job](Result<std::optional<store::GcraParams>> plan) {
                                // (no recovered() here: the plan is usually cached, the commit
                                // tells whether Redis is back)
                                if (!plan) return back_off(job, plan.error());
                                if (!plan->has_value()) {
                                  job.read_first = true;
                                  return run(job);
                                }
                                job.plan = **plan;
                                apply(job, nullptr, 0, Mode::start_admitting);
                              });
  }

  void on_loaded(Job& job, store::SagaRecord stored) {
    std::optional<SagaState> state;
    job.stored_order = !stored.order.empty();
    if (stored.version > 0) {
      auto parsed = SagaState::from_record(stored.state, stored.order);
      if (!parsed && is_transient(parsed.error().code) && job.kind == Job::Kind::delivery) {
        // Written by a newer version (a rolling upgrade): never dead-lettered. The delivery
        // keeps its order's lane and is tried again with backoff, without pausing intake; once
        // this worker is replaced, the broker hands it to a worker that reads it. (A deadline
        // or a parked start ends here as below: its claim runs out and is taken again.)
        return retry_later(job, parsed.error());
      }
      if (!parsed) {
        // A record this worker cannot read (corrupt): let the broker retry it later, and
        // dead-letter it after max attempts with the reason.
        settle_delivery(
            job, Verdict::retry(Errc::rejected,
                                fmt::format("saga record unreadable: {}", parsed.error().detail)));
        return finish(job);
      }
      state = std::move(parsed.value());
    }
    const bool starts_saga = job.kind == Job::Kind::delivery &&
                             job.event.type == EventType::order_created && !state.has_value();
    if (starts_saga) {
      if (job.admitted) return apply(job, nullptr, 0, Mode::start_admitted);
      const StoreId& store = job.event.store_id;
      // Behind the store's parked starts: parked too, so a store's starts begin in order.
      if (behind_parked(store)) return park_start(job);
      admission.admit(store, [this, &job](Result<store::Admission> a) {
        if (!a) return back_off(job, a.error());
        recovered(job);
        if (!a->allowed) return park_start(job);
        job.admitted = true;
        // No re-read: if an order.cancelled landed meanwhile, the commit finds its saga (a
        // conflict) and the job is re-applied on the saga as it is now.
        apply(job, nullptr, 0, Mode::start_admitted);
      });
      return;
    }
    apply(job, state ? &*state : nullptr, stored.version);
  }

  // Over the store's rate limit (or behind the store's parked starts): the start is committed
  // as a parked saga (refused as any start when the order has a saga) and its delivery acked,
  // so it never holds broker intake. The scheduler starts it when the store's bucket allows.
  void park_start(Job& job) {
    // Until the scheduler's next read: this store's next starts queue behind this one.
    ++parked_stores[job.event.store_id.str()];
    apply(job, nullptr, 0, Mode::park);
  }

  // A start was parked (its park commit applied: a duplicate or an order with a saga is not
  // a delayed start).
  void count_parked(Job& job) {
    if (job.was_limited) return;
    job.was_limited = true;
    rate_limited.inc();
    admission.note_delayed(job.event.store_id);
  }

  // How an order.created with no saga is committed (store::SagaStart): park: as a parked saga;
  // start_admitted: started (admitted by a call of its own); start_admitting: started if its
  // store's bucket allows it in the commit's script (else the commit changes nothing and the
  // job parks). step: everything else (a parked_start job starts its parked saga).
  enum class Mode : std::uint8_t { step, park, start_admitted, start_admitting };

  StepResult compute(Job& job, const SagaState* state, Mode mode, Millis now) {
    if (mode == Mode::park) return park(def, job.event, now);
    if (job.kind == Job::Kind::parked_start) {
      if (state == nullptr) return StepResult{};  // gone (expired): nothing to start
      return start_parked(def, *state, now);
    }
    return job.kind == Job::Kind::delivery
               ? step(def, state, SagaInput{job.event}, now)
               : step(def, state, SagaInput{Timeout{job.order_id}}, now);
  }

  void apply(Job& job, const SagaState* state, std::int64_t version, Mode mode = Mode::step) {
    const Millis now = clock.now_ms();
    StepResult r = compute(job, state, mode, now);
    switch (r.disposition) {
      case Disposition::dead_letter:
      case Disposition::ignored:
        // Nothing to commit, so no version check: if the saga came from the repository's
        // memory, step again on what Redis holds before settling.
        if (!job.fresh && repo.forget(job.order_id)) {
          job.fresh = true;
          return run(job);
        }
        settle_delivery(job, r.disposition == Disposition::ignored
                                 ? Verdict::ack()
                                 : Verdict::dead_letter(r.error.code, r.error.detail));
        return finish(job);
      case Disposition::applied:
        break;
    }
    auto commit = std::make_shared<store::ApplyRequest>();
    store::ApplyRequest& c = *commit;
    c.order_id = job.order_id;
    if (job.kind == Job::Kind::delivery) {
      c.event_id = job.event.id;
    } else if (job.kind == Job::Kind::deadline) {
      c.event_id.assign(fmt::format("{}:timeout:{}", job.order_id.view(),
                                    state ? state->deadline.value_or(0) : 0));
    }  // a parked start: the version check alone (a start runs once)
    c.store_id = r.state.store_id;
    if (r.state.status == SagaStatus::parked) c.parked_at = now;
    c.expected_version = version;
    // The compact record; the order facts only when the record has none yet (a start, an early
    // cancel's order.created, or the first commit on a record written before format 2).
    // Sized by the largest written so far: one allocation each, not a growth series.
    c.new_state.reserve(record_bytes);
    r.state.append_record(c.new_state);
    record_bytes = std::clamp(c.new_state.size(), record_bytes, kMaxReserve);
    if ((!job.stored_order || state == nullptr) && r.state.has_order()) {
      c.order.reserve(order_bytes);
      r.state.append_order(c.order);
      order_bytes = std::clamp(c.order.size(), order_bytes, kMaxReserve);
    }
    c.new_status = std::string(r.state.status_name());
    c.old_status = state ? std::string(state->status_name()) : std::string();
    c.updated_at = now;
    c.reason = r.state.reason;
    // Finished sagas expire after the dedup TTL; so does a remembered early cancel whose
    // order.created never comes within that time (one arriving later starts a normal saga).
    c.finished = r.state.finished() || r.state.status == SagaStatus::cancelled_before_start;
    c.deadline = r.deadline;
    // Counted by this step (not carried over from the stored state): a late commit moves it.
    c.fresh_deadline =
        r.deadline.has_value() && (state == nullptr || state->deadline != r.deadline);
    if (mode != Mode::step) {
      store::SagaStart& start = c.start.emplace();
      c.parked_at = now;
      switch (mode) {
        case Mode::park:
          start.admit = store::SagaStart::Admit::park;
          break;
        case Mode::start_admitted:
          start.admit = store::SagaStart::Admit::given;
          break;
        case Mode::start_admitting:
          start.admit = store::SagaStart::Admit::gcra;
          start.plan = job.plan;
          break;
        case Mode::step:
          break;
      }
    }
    c.commands.reserve(r.commands.size() + (r.outcome ? 1 : 0));
    std::size_t compensations = 0;
    for (auto& cmd : r.commands) {
      compensations += def.is_compensation(cmd.type);
      c.commands.push_back({std::move(cmd.id), std::string(kCommandsExchange),
                            std::string(to_string(cmd.type)), std::move(cmd.body)});
    }
    const std::string failure_reason =
        r.outcome && r.outcome->type == EventType::order_failed ? r.state.reason : "";
    const bool outcome = r.outcome.has_value();
    const bool confirmed = outcome && r.outcome->type == EventType::order_confirmed;
    if (outcome) {
      c.commands.push_back({std::move(r.outcome->id), std::string(kEventsExchange),
                            std::string(to_string(r.outcome->type)), std::move(r.outcome->body)});
    }
    const bool started =
        (state == nullptr || state->status == SagaStatus::parked) && !r.commands.empty();
    repo.commit(commit, [this, &job, commit, mode, outcome, confirmed, started, compensations,
                         failure_reason](Result<store::ApplyOutcome> res) {
      if (!res) return back_off(job, res.error());
      recovered(job);
      store::ApplyOutcome& cr = res.value();
      switch (cr.kind) {
        case store::ApplyKind::duplicate:
          // A timeout's id comes from the saga's deadline: one from a remembered saga may be
          // an old one, applied already. Step again on what Redis holds.
          if (job.kind != Job::Kind::delivery && !job.fresh && repo.forget(job.order_id)) {
            job.fresh = true;
            return run(job);
          }
          dedup_hits.inc();
          settle_delivery(job, Verdict::ack());
          return finish(job);
        case store::ApplyKind::conflict:
          // Another worker changed this saga first (or a saga start found one): re-read and
          // re-apply.
          if (!job.must_load) {
            job.must_load = true;
            return run(job);
          }
          conflicts.inc();
          if (++job.conflicts > options.max_conflicts) {
            job.conflicts = 0;
            return back_off(job, make_error(Errc::conflict, "saga changed concurrently too often"));
          }
          return run(job);
        case store::ApplyKind::limited:
          // Over its store's limit in the commit's admission (nothing written): park it.
          return park_start(job);
        case store::ApplyKind::applied:
          break;
      }
      if (mode == Mode::park) count_parked(job);
      if (started) sagas_started.inc();
      if (outcome) (confirmed ? finished_confirmed : finished_failed).inc();
      if (!failure_reason.empty()) failed_by_reason(failure_reason).inc();
      compensations_sent.inc(static_cast<double>(compensations));
      settle_delivery(job, Verdict::ack());
      publish_outbox(cr.partition, std::move(cr.stream_ids), std::move(commit->commands));
      finish(job);
    });
  }

  // The fast path of the outbox: publish right after the commit, clear when all confirmed.
  // Whatever is not confirmed stays in the outbox and is re-sent by the relay (same ids). The
  // commands are the commit's own, moved to the sink (the commit is over).
  void publish_outbox(int partition, std::vector<std::string> ids,
                      std::vector<store::OutboxCommand> commands) {
    if (commands.empty()) return;
    // The commit's publishes, shared by their confirms: one allocation for all of them.
    struct Pending {
      std::size_t left = 0;
      bool all_ok = true;
      int partition = 0;
      std::vector<std::string> ids;  // the outbox entries, cleared once all are confirmed
    };
    auto pending = std::make_shared<Pending>();
    pending->left = commands.size();
    pending->partition = partition;
    pending->ids = std::move(ids);
    auto& held_here = held[partition];
    for (const auto& id : pending->ids) held_here.insert(id);
    std::weak_ptr<bool> weak = alive;
    for (auto& message : commands) {
      sink.publish(std::move(message), [this, weak, pending](Status st) {
        if (weak.expired()) return;
        pending->all_ok = pending->all_ok && st.ok();
        if (st.ok()) commands_sent.inc();
        if (--pending->left > 0) return;
        // not confirmed: the relay's now
        auto& held_there = held[pending->partition];
        for (const auto& id : pending->ids) held_there.erase(id);
        if (pending->all_ok && !pending->ids.empty()) {
          clear_later(pending->partition, std::move(pending->ids));
        }
      });
    }
  }

  // Outbox entries confirmed by the broker are cleared in batches, one call per partition
  // per few milliseconds instead of one per event.
  std::unordered_map<int, std::vector<std::string>> to_clear;
  bool clear_scheduled = false;
  void clear_later(int partition, std::vector<std::string> ids) {
    auto& pending_ids = to_clear[partition];
    pending_ids.insert(pending_ids.end(), std::make_move_iterator(ids.begin()),
                       std::make_move_iterator(ids.end()));
    if (clear_scheduled) return;
    clear_scheduled = true;
    std::weak_ptr<bool> weak = alive;
    timers.after(2, [this, weak] {
      if (weak.expired()) return;
      clear_scheduled = false;
      for (auto& [p, v] : to_clear) {
        if (v.empty()) continue;
        const std::size_t size = v.size();
        repo.outbox_done(p, std::move(v));
        v.clear();
        v.reserve(size);  // one allocation for the next round, not a growth series
      }
    });
  }
};

Pipeline::Pipeline(const SagaDefinition& definition, SagaRepository& repo,
                   StartAdmission& admission, MessageSink& sink, Timers& timers, const Clock& clock,
                   metrics::Registry& metrics, SettleFn settle, PipelineOptions options)
    : impl_(std::make_unique<Impl>(definition, repo, admission, sink, timers, clock, metrics,
                                   std::move(settle), std::move(options))) {}

Pipeline::~Pipeline() {
  *impl_->alive = false;
}

void Pipeline::on_delivery(std::uint64_t tag, std::string_view body) {
  Impl& m = *impl_;
  auto job = m.new_job(Job::Kind::delivery);
  job->tag = tag;
  ++m.in_flight;
  if (auto st = m.parser.parse(body, job->event); !st) {
    m.settle_delivery(*job, Verdict::dead_letter(st.error().code, st.error().detail));
    --m.in_flight;
    return m.recycle(std::move(job));
  }
  m.consumed[static_cast<std::size_t>(job->event.type)]->inc();
  if (m.options.skip_outcomes && (job->event.type == EventType::order_confirmed ||
                                  job->event.type == EventType::order_failed)) {
    m.settle_delivery(*job, Verdict::ack());
    --m.in_flight;
    return m.recycle(std::move(job));
  }
  if (!is_saga_input(job->event.type)) {
    m.settle_delivery(*job,
                      Verdict::dead_letter(Errc::unknown_type,
                                           fmt::format("'{}' is not an input of the saga worker",
                                                       to_string(job->event.type))));
    --m.in_flight;
    return m.recycle(std::move(job));
  }
  job->order_id.assign(job->event.order_id.view());
  const std::string_view order = job->order_id.view();  // the job's own: it outlives the call
  m.lanes.submit(order, std::move(job));
}

void Pipeline::on_parked_start(const OrderId& order) {
  Impl& m = *impl_;
  auto job = m.new_job(Job::Kind::parked_start);
  job->order_id.assign(order.view());
  ++m.in_flight;
  m.lanes.submit(order.view(), std::move(job));
}

void Pipeline::set_parked_stores(std::map<std::string, std::int64_t, std::less<>> counts) {
  impl_->parked_stores = std::move(counts);
}

void Pipeline::on_deadline(const OrderId& order) {
  Impl& m = *impl_;
  auto job = m.new_job(Job::Kind::deadline);
  job->order_id.assign(order.view());
  ++m.in_flight;
  m.lanes.submit(order.view(), std::move(job));
}

std::size_t Pipeline::in_flight() const noexcept {
  return impl_->in_flight;
}
bool Pipeline::holds(int partition, const std::string& outbox_id) const {
  const auto it = impl_->held.find(partition);
  return it != impl_->held.end() && it->second.count(outbox_id) != 0;
}
bool Pipeline::degraded() const noexcept {
  return impl_->failing > 0;
}
void Pipeline::on_degraded_change(std::function<void(bool)> fn) {
  impl_->degraded_change = std::move(fn);
}

}  // namespace sagaflow::app
