// The saga pipeline with fake side effects (no network, injected clock): what is settled, how,
// and when; per-order serialization; dependency outages; rate-limit delays; CAS conflicts.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "app/worker/cached_repository.hpp"
#include "app/worker/pipeline.hpp"
#include "sagas/definition.hpp"
#include "sagas/engine.hpp"

using namespace sagaflow;
using namespace sagaflow::app;

namespace {

struct FakeAdmission;

// Redis, as a map, with every callback deferred until run() so tests control interleavings.
// A start (ApplyRequest::start) is committed as apply.lua does: refused when the order has a
// saga (a duplicate when this event created it), admitted by `admission` when asked to (over
// the limit: `limited`, nothing written).
struct FakeRepo final : SagaRepository {
  explicit FakeRepo(FakeAdmission& a) : admission(a) {}
  FakeAdmission& admission;
  std::map<std::string, store::SagaRecord> sagas;
  std::map<std::string, std::string> created_by;
  std::set<std::string> done_events;
  std::vector<store::ApplyRequest> commits;  // applied
  int loads = 0;
  std::vector<std::string> cleared;
  std::deque<std::function<void()>> queue;
  bool down = false;
  int bump_before_next_commit = 0;  // simulate another worker winning the CAS

  void load(const OrderId& order, std::function<void(Result<store::SagaRecord>)> done) override {
    ++loads;
    queue.push_back([this, order, done] {
      if (down) return done(make_error(Errc::unavailable, "redis down"));
      auto it = sagas.find(order.str());
      done(it == sagas.end() ? store::SagaRecord{} : it->second);
    });
  }
  void commit(std::shared_ptr<store::ApplyRequest> request,
              std::function<void(Result<store::ApplyOutcome>)> done) override {
    queue.push_back([this, c = *request, done] {
      if (down) return done(make_error(Errc::unavailable, "redis down"));
      auto& s = sagas[c.order_id.str()];
      if (bump_before_next_commit > 0) {
        --bump_before_next_commit;
        s.version += 1;
      }
      const bool seen = !c.event_id.empty() && (done_events.count(c.event_id.str()) ||
                                                created_by[c.order_id.str()] == c.event_id.str());
      if (seen && (c.start.has_value() ? s.version > 0 : true))
        return done(store::ApplyOutcome{store::ApplyKind::duplicate, s.version, 0, {}});
      if (s.version != c.expected_version)
        return done(store::ApplyOutcome{store::ApplyKind::conflict, s.version, 0, {}});
      if (c.start && c.start->admit == store::SagaStart::Admit::gcra && !take_token()) {
        if (s.version == 0) sagas.erase(c.order_id.str());
        return done(store::ApplyOutcome{store::ApplyKind::limited, 0, 0, {}});
      }
      if (c.start) {
        created_by[c.order_id.str()] = c.event_id.str();  // no dedup mark
      } else {
        done_events.insert(c.event_id.str());
      }
      s.version += 1;
      s.state = c.new_state;
      s.status = c.new_status;
      if (!c.order.empty()) s.order = c.order;
      commits.push_back(c);
      store::ApplyOutcome r{store::ApplyKind::applied, s.version, 3, {}};
      for (std::size_t i = 0; i < c.commands.size(); ++i)
        r.stream_ids.push_back("id" + std::to_string(i));
      done(r);
    });
  }
  bool take_token();
  void outbox_done(int, std::vector<std::string> ids) override {
    cleared.insert(cleared.end(), ids.begin(), ids.end());
  }
  // Runs deferred callbacks (and those they queue) until none is left.
  void run() {
    while (!queue.empty()) {
      auto f = std::move(queue.front());
      queue.pop_front();
      f();
    }
  }
};

struct FakeAdmission final : StartAdmission {
  std::int64_t retry_after_ms = 0;  // > 0: refuse with this delay
  int calls = 0;
  void admit(const StoreId&, std::function<void(Result<store::Admission>)> done) override {
    ++calls;
    if (retry_after_ms > 0) return done(store::Admission{false, 0, retry_after_ms});
    done(store::Admission{true, 1, 0});
  }
  void admit_up_to(const StoreId&, std::int64_t n, bool,
                   std::function<void(Result<std::int64_t>)> done) override {
    ++calls;
    done(retry_after_ms > 0 ? std::int64_t{0} : n);
  }
  int delayed = 0;
  void note_delayed(const StoreId&) override { ++delayed; }
  bool in_commit = true;  // false: as on a cluster, a start is admitted by admit()
  void plan_for_commit(
      const StoreId&, std::function<void(Result<std::optional<store::GcraParams>>)> done) override {
    if (!in_commit) return done(std::optional<store::GcraParams>{});
    done(std::optional<store::GcraParams>(store::GcraParams{1000, 0}));
  }
};

bool FakeRepo::take_token() {
  ++admission.calls;
  return admission.retry_after_ms <= 0;
}

struct FakeSink final : MessageSink {
  std::vector<store::OutboxCommand> published;
  bool hold = false;  // keep the confirms until confirm_all()
  std::vector<std::function<void(Status)>> unconfirmed;
  void publish(store::OutboxCommand m, std::function<void(Status)> done) override {
    published.push_back(std::move(m));
    if (hold) return unconfirmed.push_back(std::move(done));
    done(Status::success());
  }
  void confirm_all(Status st) {
    auto owed = std::move(unconfirmed);
    unconfirmed.clear();
    for (auto& cb : owed) cb(st);
  }
};

struct FakeTimers final : Timers {
  std::multimap<Millis, std::function<void()>> due;
  ManualClock& clock;
  explicit FakeTimers(ManualClock& c) : clock(c) {}
  void after(Millis delay, std::function<void()> fn) override {
    due.emplace(clock.now_ms() + delay, std::move(fn));
  }
  void advance(Millis ms) {
    clock.advance(ms);
    while (!due.empty() && due.begin()->first <= clock.now_ms()) {
      auto fn = std::move(due.begin()->second);
      due.erase(due.begin());
      fn();
    }
  }
};

struct Harness {
  // remember: the worker's wiring, a CachedSagaRepository over the repository
  explicit Harness(bool remember = false) : remembering(remember) {
    pipeline.on_degraded_change([this](bool d) { degraded_changes.push_back(d); });
  }
  bool remembering;
  ManualClock clock{1'700'000'000'000};
  FakeAdmission admission;
  FakeRepo repo{admission};
  CachedSagaRepository cached{repo, 100, std::size_t{1} << 20};
  FakeSink sink;
  FakeTimers timers{clock};
  metrics::Registry registry;
  std::vector<SagaDefinition> defs = builtin_definitions(30000).value();
  std::map<std::uint64_t, Verdict> settled;
  std::vector<bool> degraded_changes;
  Pipeline pipeline{defs.front(),
                    remembering ? static_cast<SagaRepository&>(cached) : repo,
                    admission,
                    sink,
                    timers,
                    clock,
                    registry,
                    [this](std::uint64_t tag, Verdict s) {
                      REQUIRE(settled.count(tag) == 0);  // settled exactly once
                      settled[tag] = std::move(s);
                    }};
  void deliver(std::uint64_t tag, const std::string& body) {
    pipeline.on_delivery(tag, body);
    repo.run();
  }
};

std::string order_created(const std::string& order, const std::string& id = "") {
  return R"({"id":")" + (id.empty() ? "evt_" + order : id) +
         R"(","type":"order.created","store_id":"s1",)"
         R"("data":{"order_id":")" +
         order +
         R"(","customer_id":"c1","total":"99.99","currency":"EUR",)"
         R"("items":[{"sku":"A","qty":1,"price":"99.99"}]}})";
}
std::string reply(const std::string& type, const std::string& order,
                  const std::string& extra = "") {
  return R"({"id":"r_)" + type + "_" + order + R"(","type":")" + type +
         R"(","data":{"order_id":")" + order + "\"" + extra + "}}";
}

}  // namespace

TEST_CASE(
    "order.created commits the saga with inventory.reserve, acks, publishes, clears the outbox",
    "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  REQUIRE(h.settled.count(1));
  CHECK(h.settled[1].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 1);
  const store::ApplyRequest& c = h.repo.commits[0];
  CHECK(c.expected_version == 0);
  CHECK(c.event_id.str() == "evt_o1");
  REQUIRE(c.commands.size() == 1);
  CHECK(c.commands[0].exchange == "sagaflow.commands");
  CHECK(c.commands[0].route == "inventory.reserve");
  CHECK(c.commands[0].id == "o1:inventory.reserve");
  CHECK(c.deadline.has_value());
  CHECK(h.sink.published.size() == 1);
  CHECK(h.repo.cleared.empty());  // cleared in a batch, a few ms later
  h.timers.advance(5);
  CHECK(h.repo.cleared == std::vector<std::string>{"id0"});
  CHECK(h.pipeline.in_flight() == 0);
}

TEST_CASE("a reply that looks stale to the remembered saga is checked against Redis first",
          "[pipeline]") {
  Harness h(/*remember=*/true);
  // Given this worker started o1 (it remembers the saga at version 1, inventory pending)
  h.deliver(1, order_created("o1"));
  REQUIRE(h.settled[1].kind == Verdict::Kind::ack);
  // And another worker applied inventory.reserved meanwhile (Redis: version 2, payment pending)
  const auto& def = h.defs.front();
  auto v1 = SagaState::from_json(h.repo.sagas["o1"].state);
  REQUIRE(v1.ok());
  EnvelopeParser parser;
  auto reserved = parser.parse(reply("inventory.reserved", "o1", R"(,"reservation_id":"r1")"));
  REQUIRE(reserved.ok());
  auto v2 = step(def, &v1.value(), SagaInput{reserved.value()}, h.clock.now_ms());
  REQUIRE(v2.disposition == Disposition::applied);
  h.repo.sagas["o1"] = store::SagaRecord{2, v2.state.to_json(), "running", ""};
  // When payment.completed arrives here (ignored by the remembered state: no charge was sent)
  h.deliver(2, reply("payment.completed", "o1", R"(,"payment_id":"p1")"));
  // Then it is stepped on Redis' saga, not acked unseen: shipment.create goes out
  REQUIRE(h.settled.count(2));
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].expected_version == 2);
  REQUIRE(h.repo.commits[1].commands.size() == 1);
  CHECK(h.repo.commits[1].commands[0].route == "shipment.create");
}

TEST_CASE("bad content is dead-lettered at once with its reason", "[pipeline]") {
  Harness h;
  h.deliver(1, "not json");
  h.deliver(2, R"({"id":"x","type":"order.shipped","data":{"order_id":"o"}})");
  h.deliver(3, reply("inventory.reserved", "nobody", R"(,"reservation_id":"r1")"));
  h.deliver(4, R"({"id":"x","type":"order.confirmed","data":{"order_id":"o"}})");
  CHECK(h.settled[1].kind == Verdict::Kind::dead_letter);
  CHECK(h.settled[1].reason == Errc::malformed_json);
  CHECK(h.settled[2].reason == Errc::unknown_type);
  CHECK(h.settled[3].kind == Verdict::Kind::dead_letter);
  CHECK(h.settled[3].reason == Errc::unknown_saga);
  CHECK(h.settled[4].reason == Errc::unknown_type);  // an outcome is not a saga input
  CHECK(h.repo.commits.empty());
  CHECK(h.sink.published.empty());
}

TEST_CASE("the outbox entries a publish still holds are the pipeline's, not the relay's",
          "[pipeline]") {
  Harness h;
  h.sink.hold = true;
  // Given a start whose command the broker has not confirmed yet
  h.deliver(1, order_created("o1"));
  REQUIRE(h.sink.unconfirmed.size() == 1);
  // Then its outbox entry is held (the relay leaves it alone, however long the confirm takes)
  CHECK(h.pipeline.holds(3, "id0"));  // FakeRepo commits to partition 3
  CHECK_FALSE(h.pipeline.holds(3, "id1"));
  CHECK_FALSE(h.pipeline.holds(4, "id0"));  // ids repeat across partitions' streams
  // When the broker refuses it, the entry is the relay's to re-send, and not cleared
  h.sink.confirm_all(make_error(Errc::unavailable, "nack"));
  CHECK_FALSE(h.pipeline.holds(3, "id0"));
  h.timers.advance(1000);
  CHECK(h.repo.cleared.empty());
  // When another start's command is confirmed, its entry is released and cleared
  h.deliver(2, order_created("o2"));
  CHECK(h.pipeline.holds(3, "id0"));
  h.sink.confirm_all(Status::success());
  CHECK_FALSE(h.pipeline.holds(3, "id0"));
  h.timers.advance(1000);
  CHECK(h.repo.cleared == std::vector<std::string>{"id0"});
}

TEST_CASE("a duplicate delivery is acked and changes nothing", "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  h.deliver(2, order_created("o1"));               // same id
  h.deliver(3, order_created("o1", "evt_other"));  // second order.created, other id
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  CHECK(h.settled[3].kind == Verdict::Kind::ack);
  CHECK(h.repo.commits.size() == 1);
  CHECK(h.sink.published.size() == 1);
}

TEST_CASE("two events of one order are applied one after the other", "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  // Given the reply and a cancel delivered back to back, before any Redis answer
  h.pipeline.on_delivery(2, reply("inventory.reserved", "o1", R"(,"reservation_id":"r1")"));
  h.pipeline.on_delivery(3, R"({"id":"c1","type":"order.cancelled","data":{"order_id":"o1"}})");
  // Then only one load is outstanding: the second waits in the order's lane
  CHECK(h.repo.queue.size() == 1);
  h.repo.run();
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  CHECK(h.settled[3].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 3);
  CHECK(h.repo.commits[1].expected_version == 1);
  CHECK(h.repo.commits[2].expected_version == 2);
  // The cancel came after payment.charge was sent: compensation starts with the last step
  // sent (its outcome is unknown, so it may have happened), in reverse order
  REQUIRE(h.repo.commits[2].commands.size() == 1);
  CHECK(h.repo.commits[2].commands[0].route == "payment.refund");
}

TEST_CASE("Redis down: nothing settled, intake degraded, then applied when it is back",
          "[pipeline]") {
  Harness h;
  h.repo.down = true;
  h.deliver(1, order_created("o1"));
  CHECK(h.settled.empty());
  CHECK(h.pipeline.degraded());
  CHECK(h.degraded_changes == std::vector<bool>{true});
  h.timers.advance(100);
  h.repo.run();
  CHECK(h.settled.empty());  // still down: still waiting, not dead-lettered
  h.repo.down = false;
  h.timers.advance(5000);
  h.repo.run();
  REQUIRE(h.settled.count(1));
  CHECK(h.settled[1].kind == Verdict::Kind::ack);
  CHECK_FALSE(h.pipeline.degraded());
  CHECK(h.degraded_changes == std::vector<bool>{true, false});
}

TEST_CASE("a start over its limit is parked and acked, then started by the scheduler",
          "[pipeline]") {
  Harness h;
  h.admission.retry_after_ms = 1000;
  h.deliver(1, order_created("o1"));
  // Then the delivery is acked (it never holds intake) and the saga is recorded parked
  REQUIRE(h.settled.count(1));
  CHECK(h.settled[1].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 1);
  CHECK(h.repo.commits[0].new_status == "parked");
  CHECK(h.repo.commits[0].commands.empty());
  CHECK(h.repo.commits[0].store_id.view() == "s1");
  CHECK(h.repo.commits[0].parked_at == h.clock.now_ms());
  CHECK_FALSE(h.repo.commits[0].deadline);
  CHECK(h.admission.delayed == 1);
  CHECK(h.sink.published.empty());
  // When the scheduler hands it back (it took the token): started as order.created would be
  h.pipeline.on_parked_start(OrderId(std::string("o1")));
  h.repo.run();
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].new_status == "running");
  CHECK(h.repo.commits[1].expected_version == 1);
  REQUIRE(h.repo.commits[1].commands.size() == 1);
  CHECK(h.repo.commits[1].commands[0].route == "inventory.reserve");
  REQUIRE(h.sink.published.size() == 1);
  // A second hand-back (a lease taken over) starts nothing twice
  h.pipeline.on_parked_start(OrderId(std::string("o1")));
  h.repo.run();
  CHECK(h.repo.commits.size() == 2);
  CHECK(h.sink.published.size() == 1);
}

TEST_CASE("a cancel of a parked start ends it at once, and it never starts", "[pipeline]") {
  Harness h;
  h.admission.retry_after_ms = 1000;
  h.deliver(1, order_created("o1"));
  h.deliver(2, R"({"id":"c1","type":"order.cancelled","data":{"order_id":"o1"}})");
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].new_status == "failed");
  CHECK(h.repo.commits[1].finished);
  REQUIRE(h.sink.published.size() == 1);
  CHECK(h.sink.published[0].route == "order.failed");
  CHECK_THAT(h.sink.published[0].body, Catch::Contains("\"reason\":\"cancelled\""));
  h.pipeline.on_parked_start(OrderId(std::string("o1")));
  h.repo.run();
  CHECK(h.repo.commits.size() == 2);  // nothing to start
  for (const auto& m : h.sink.published) CHECK(m.exchange == "sagaflow.events");
}

TEST_CASE("a start behind its store's parked starts is parked without taking a token",
          "[pipeline]") {
  Harness h;
  h.pipeline.set_parked_stores({{"s1", 3}});
  h.deliver(1, order_created("o1"));
  CHECK(h.admission.calls == 0);
  REQUIRE(h.repo.commits.size() == 1);
  CHECK(h.repo.commits[0].new_status == "parked");
  CHECK(h.settled[1].kind == Verdict::Kind::ack);
  // Another store is not held back
  h.deliver(2, R"({"id":"e2","type":"order.created","store_id":"s2","data":{"order_id":"o2",)"
               R"("customer_id":"c1","total":"1.00","currency":"EUR",)"
               R"("items":[{"sku":"A","qty":1,"price":"1.00"}]}})");
  CHECK(h.admission.calls == 1);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].new_status == "running");
}

TEST_CASE("a commit lost to another worker is re-read and re-applied", "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  h.repo.bump_before_next_commit = 1;  // someone else wrote version 2 meanwhile
  h.deliver(2, reply("inventory.reserved", "o1", R"(,"reservation_id":"r1")"));
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].expected_version == 2);
}

TEST_CASE("only a start takes a token: duplicates, existing sagas and remembered cancels take none",
          "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  CHECK(h.admission.calls == 1);
  // The same event again, and another order.created for an order that has a saga
  h.deliver(2, order_created("o1"));
  h.deliver(3, order_created("o1", "evt_other"));
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  CHECK(h.settled[3].kind == Verdict::Kind::ack);
  CHECK(h.admission.calls == 1);
  // An order.cancelled remembered before its order.created: the start ends at once, no token
  h.deliver(4, R"({"id":"c2","type":"order.cancelled","data":{"order_id":"o2"}})");
  h.deliver(5, order_created("o2"));
  CHECK(h.settled[5].kind == Verdict::Kind::ack);
  CHECK(h.admission.calls == 1);
  bool failed_o2 = false;
  for (const auto& m : h.sink.published) {
    failed_o2 |= m.route == "order.failed" && m.body.find("\"o2\"") != std::string::npos;
    if (m.id.rfind("o2:", 0) == 0) CHECK(m.exchange == "sagaflow.events");  // no command
  }
  CHECK(failed_o2);
}

TEST_CASE("a start is committed without a read; on a cluster it is read and admitted first",
          "[pipeline]") {
  for (const bool in_commit : {true, false}) {
    CAPTURE(in_commit);
    Harness h;
    h.admission.in_commit = in_commit;
    h.deliver(1, order_created("o1"));
    REQUIRE(h.settled.count(1));
    CHECK(h.settled[1].kind == Verdict::Kind::ack);
    REQUIRE(h.repo.commits.size() == 1);
    const store::ApplyRequest& c = h.repo.commits[0];
    REQUIRE(c.start.has_value());
    CHECK(c.expected_version == 0);
    CHECK(c.new_status == "running");
    // One Redis: no load, the token is taken in the commit; a cluster: a load, then a separate
    // admission
    CHECK(h.repo.loads == (in_commit ? 0 : 1));
    CHECK(c.start->admit ==
          (in_commit ? store::SagaStart::Admit::gcra : store::SagaStart::Admit::given));
    CHECK(h.admission.calls == 1);
    CHECK(h.sink.published.size() == 1);
  }
}

TEST_CASE("a start the commit's admission refuses is parked, acked, counted, then started",
          "[pipeline]") {
  Harness h(/*remember=*/true);
  h.admission.retry_after_ms = 1000;
  h.deliver(1, order_created("o1"));
  REQUIRE(h.settled.count(1));
  CHECK(h.settled[1].kind == Verdict::Kind::ack);
  CHECK(h.repo.loads == 0);
  REQUIRE(h.repo.commits.size() == 1);  // the refused start wrote nothing; then the park
  CHECK(h.repo.commits[0].new_status == "parked");
  CHECK(h.repo.commits[0].start->admit == store::SagaStart::Admit::park);
  CHECK(h.repo.commits[0].parked_at == h.clock.now_ms());
  CHECK(h.admission.delayed == 1);
  CHECK(h.sink.published.empty());
  // The store's next start queues behind it without asking for a token
  h.admission.retry_after_ms = 0;
  h.deliver(2, order_created("o2"));
  CHECK(h.admission.calls == 1);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].new_status == "parked");
  CHECK(h.repo.commits[1].start->admit == store::SagaStart::Admit::park);
  // The scheduler hands o1 back: it reads the parked record and starts it
  h.pipeline.on_parked_start(OrderId(std::string("o1")));
  h.repo.run();
  REQUIRE(h.repo.commits.size() == 3);
  CHECK(h.repo.commits[2].new_status == "running");
  CHECK(h.repo.commits[2].expected_version == 1);
  REQUIRE(h.sink.published.size() == 1);
  CHECK(h.sink.published[0].route == "inventory.reserve");
  // A re-delivered order.created of a parked start is a duplicate, not a second saga, and not
  // counted as a delayed start
  h.deliver(3, order_created("o2"));
  CHECK(h.settled[3].kind == Verdict::Kind::ack);
  CHECK(h.repo.commits.size() == 3);
  CHECK(h.admission.delayed == 2);
  CHECK(h.registry.counter("sagaflow_rate_limited_total", "").value() == 2);
}

TEST_CASE("on a cluster too, only a start takes a token", "[pipeline]") {
  Harness h;
  h.admission.in_commit = false;
  h.deliver(1, order_created("o1"));
  h.deliver(2, order_created("o1"));
  h.deliver(3, order_created("o1", "evt_other"));
  h.deliver(4, R"({"id":"c2","type":"order.cancelled","data":{"order_id":"o2"}})");
  h.deliver(5, order_created("o2"));
  for (std::uint64_t tag = 1; tag <= 5; ++tag) CHECK(h.settled[tag].kind == Verdict::Kind::ack);
  CHECK(h.admission.calls == 1);
  CHECK(h.sink.published.size() == 2);  // o1's inventory.reserve, o2's order.failed
}

TEST_CASE("a saga record of a newer format is retried, never dead-lettered, intake goes on",
          "[pipeline]") {
  Harness h;
  h.deliver(1, order_created("o1"));
  REQUIRE(h.settled[1].kind == Verdict::Kind::ack);
  // Given a newer worker rewrote the record in a format this build does not know
  std::string newer = h.repo.sagas["o1"].state;
  REQUIRE(newer.rfind("{\"schema\":2,", 0) == 0);
  const std::string current = newer;
  newer.replace(0, 12, "{\"schema\":3,");
  h.repo.sagas["o1"].state = newer;
  // When a reply for it arrives
  h.deliver(2, reply("inventory.reserved", "o1", R"(,"reservation_id":"r1")"));
  // Then it is not settled (no dead letter, no broker retry), and intake is not paused
  CHECK(h.settled.count(2) == 0);
  CHECK_FALSE(h.pipeline.degraded());
  h.timers.advance(3000);
  h.repo.run();
  CHECK(h.settled.count(2) == 0);
  // And other orders go on meanwhile
  h.deliver(3, order_created("o2"));
  CHECK(h.settled[3].kind == Verdict::Kind::ack);
  // When the record is readable again, the held event is applied
  h.repo.sagas["o1"].state = current;
  h.timers.advance(3000);
  h.repo.run();
  REQUIRE(h.settled.count(2));
  CHECK(h.settled[2].kind == Verdict::Kind::ack);
  CHECK(h.sink.published.back().route == "payment.charge");
}

TEST_CASE("a record of the previous format is continued, and gets its order facts once",
          "[pipeline]") {
  Harness h(/*remember=*/true);
  // Given a saga started before the upgrade: format 1 (the full object), no order field
  h.deliver(1, order_created("o1"));
  auto started = SagaState::from_record(h.repo.sagas["o1"].state, h.repo.sagas["o1"].order);
  REQUIRE(started.ok());
  REQUIRE(started->has_order());
  h.repo.sagas["o1"] = store::SagaRecord{1, started->to_json(), "running", ""};
  h.cached.forget(OrderId(std::string("o1")));
  // When its reply arrives
  h.deliver(2, reply("inventory.reserved", "o1", R"(,"reservation_id":"r1")"));
  // Then it is stepped (payment.charge, with the order's total), written in format 2 with the
  // order facts it did not have
  REQUIRE(h.settled[2].kind == Verdict::Kind::ack);
  REQUIRE(h.repo.commits.size() == 2);
  CHECK(h.repo.commits[1].new_state.rfind("{\"schema\":2,", 0) == 0);
  CHECK_FALSE(h.repo.commits[1].order.empty());
  REQUIRE(h.sink.published.size() == 2);
  CHECK(h.sink.published[1].route == "payment.charge");
  CHECK_THAT(h.sink.published[1].body, Catch::Contains("99.99"));
  // And the next step (from this worker's memory) neither rewrites them nor loses them
  h.deliver(3, reply("payment.completed", "o1", R"(,"payment_id":"p1")"));
  REQUIRE(h.repo.commits.size() == 3);
  CHECK(h.repo.commits[2].order.empty());
  REQUIRE(h.sink.published.size() == 3);
  CHECK(h.sink.published[2].route == "shipment.create");
  CHECK_THAT(h.sink.published[2].body, Catch::Contains("\"sku\":\"A\""));
  auto now = SagaState::from_record(h.repo.sagas["o1"].state, h.repo.sagas["o1"].order);
  REQUIRE(now.ok());
  CHECK(now->items_json == started->items_json);
}
