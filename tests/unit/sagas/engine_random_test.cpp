// Randomized test of the saga engine: thousands of random input sequences per seed
// (duplicates, reorders, late and stale replies, cancels, timeouts at any point, random
// participant answers), with CONTRACT.md section 3's invariants checked after every step by a
// shadow model that only looks at what the engine emits. Seeds are fixed: deterministic.
#include <cstdint>
#include <string>
#include <vector>

#include "support.hpp"

using namespace sagaflow;
using namespace sagaflow::test;

namespace {

// splitmix64: tiny, portable, deterministic.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
  bool chance(int percent) { return below(100) < percent; }
};

enum class Report : std::uint8_t { none, success, failure };

// What the engine has said so far about one saga, and the invariants over it.
class Shadow {
 public:
  Shadow(const SagaDefinition& def, std::string order, std::string total_json)
      : def_(def),
        order_(std::move(order)),
        total_json_(std::move(total_json)),
        n_(def.steps.size()),
        sent_(n_, false),
        sends_(n_, 0),
        report_(n_, Report::none),
        comp_issued_(n_, false),
        comp_sends_(n_, 0),
        failed_at_outcome_(n_, false) {}

  std::string error;  // the first broken invariant

  // Before the step: what the input reports (only for steps whose command was sent).
  void before(const SagaInput& in, const SagaState* state) {
    had_saga_ = state != nullptr && state->status != SagaStatus::cancelled_before_start;
    if (in.is_timeout()) return;
    const Event& e = *in.event();
    const EventRole role = def_.role_of(e.type);
    if (role.step < 0) return;
    const auto s = static_cast<std::size_t>(role.step);
    if (!sent_[s]) return;
    if (role.role == ReplyRole::success)
      report_[s] = Report::success;  // a late success overrides a failure
    if (role.role == ReplyRole::failure && report_[s] == Report::none) report_[s] = Report::failure;
    if (role.role == ReplyRole::compensation_ack && outstanding_ == role.step) outstanding_ = -1;
  }

  void after(const SagaInput& in, const SagaState* before_state, const StepResult& r) {
    const bool timeout = in.is_timeout();
    const Event* e = in.event();
    const bool is_reply =
        e && e->type != EventType::order_created && e->type != EventType::order_cancelled;

    // Dispositions: dead-letter exactly the replies with no saga.
    if (is_reply && !had_saga_) {
      expect(r.disposition == Disposition::dead_letter && r.error.code == Errc::unknown_saga,
             "a reply with no saga must be dead-lettered as unknown_saga");
      return;
    }
    expect(r.disposition != Disposition::dead_letter, "dead-lettered an input of an existing saga");
    if (r.disposition != Disposition::applied) {
      expect(r.commands.empty() && !r.outcome, "an ignored input emitted something");
      return;
    }
    if (e && e->type == EventType::order_cancelled && before_state == nullptr) cancel_first_ = true;
    expect(r.commands.size() <= 1, "more than one command in one step");

    for (const SagaMessage& c : r.commands) check_command(c, timeout, e);
    if (r.outcome) check_outcome(*r.outcome);
    check_state(r);
  }

 private:
  void expect(bool ok, const std::string& what) {
    if (!ok && error.empty()) error = what;
  }

  int step_of_command(EventType t, bool& compensation) const {
    for (std::size_t i = 0; i < n_; ++i) {
      if (def_.steps[i].command == t) {
        compensation = false;
        return static_cast<int>(i);
      }
      if (def_.steps[i].compensation == t) {
        compensation = true;
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  bool eligible(std::size_t s) const {
    return sent_[s] && report_[s] != Report::failure && !comp_issued_[s];
  }

  void check_command(const SagaMessage& c, bool timeout, const Event* e) {
    const std::string type(to_string(c.type));
    // Deterministic ids and the envelope.
    expect(c.id == order_ + ":" + type, "command id is not <order_id>:<type>");
    expect(c.body.find("{\"id\":\"" + c.id + "\",\"type\":\"" + type + "\"") == 0,
           "command envelope head");
    expect(c.body.find("\"saga_id\":\"order_fulfillment:" + order_ + "\"") != std::string::npos,
           "saga_id");
    expect(!cancel_first_, "a command was sent for an order cancelled before it was created");
    if (c.type == EventType::payment_charge || c.type == EventType::payment_refund) {
      expect(c.body.find("\"amount\":" + total_json_ + ",") != std::string::npos,
             "money changed in " + type);
    }
    bool compensation = false;
    const int s = step_of_command(c.type, compensation);
    if (s < 0) return expect(false, "a command of no step: " + type);
    const auto i = static_cast<std::size_t>(s);
    if (!compensation) {
      expect(!compensation_started_ && outcomes_ == 0,
             "forward command after compensation started: " + type);
      if (sent_[i]) {
        expect(timeout && last_forward_ == s && report_[i] == Report::none,
               "forward re-send without a timeout");
        expect(++sends_[i] <= def_.steps[i].retries + 1, "more re-sends than retries");
      } else {
        const bool first = s == 0 && e && e->type == EventType::order_created;
        const bool next = s == last_forward_ + 1 && last_forward_ >= 0 &&
                          report_[static_cast<std::size_t>(last_forward_)] == Report::success &&
                          e &&
                          e->type == def_.steps[static_cast<std::size_t>(last_forward_)].success;
        expect(first || next, "forward command out of order: " + type);
        sent_[i] = true;
        sends_[i] = 1;
        last_forward_ = s;
      }
      return;
    }
    if (comp_issued_[i]) {  // a re-send (a failure reported after the first send changes nothing)
      expect(timeout && outstanding_ == s, "compensation re-sent without a timeout");
      expect(++comp_sends_[i] <= def_.compensation_retries + 1,
             "more compensation re-sends than allowed");
      return;
    }
    // A compensation: only for a step whose command was sent and did not report failure.
    expect(sent_[i] && report_[i] != Report::failure,
           "compensation of a step never sent or failed: " + type);
    // One at a time, in reverse: the highest step still to undo, after the previous ack.
    expect(outstanding_ == -1, "a compensation sent while another is not acknowledged: " + type);
    for (std::size_t j = i + 1; j < n_; ++j)
      expect(!eligible(j), "compensation out of reverse order: " + type);
    // After the outcome, only for a success that arrived late.
    if (outcomes_ > 0)
      expect(failed_at_outcome_[i], "a compensation after the outcome not for a late success");
    comp_issued_[i] = true;
    comp_sends_[i] = 1;
    outstanding_ = s;
    compensation_started_ = true;
    compensations_.push_back(type);
  }

  void check_outcome(const SagaMessage& o) {
    expect(++outcomes_ == 1, "a second outcome");
    const std::string type(to_string(o.type));
    expect(o.id == order_ + ":" + type, "outcome id is not <order_id>:<type>");
    if (o.type == EventType::order_confirmed) {
      for (std::size_t i = 0; i < n_; ++i)
        expect(report_[i] == Report::success, "confirmed with a step not done");
      expect(!compensation_started_, "confirmed after compensating");
      return;
    }
    expect(o.type == EventType::order_failed, "an outcome of another type");
    // Every step that was sent and did not fail is compensated, and acknowledged.
    for (std::size_t i = 0; i < n_; ++i) {
      expect(!sent_[i] || report_[i] == Report::failure || comp_issued_[i],
             "failed with a step not compensated");
      failed_at_outcome_[i] = sent_[i] && report_[i] == Report::failure;
    }
    expect(outstanding_ == -1, "failed before the last compensation was acknowledged");
    // The compensated list is exactly the compensations issued, in order.
    std::string list = "\"compensated\":[";
    for (std::size_t i = 0; i < compensations_.size(); ++i)
      list += (i ? ",\"" : "\"") + compensations_[i] + "\"";
    list += "]";
    expect(o.body.find(list) != std::string::npos,
           "compensated list differs from the compensations issued");
    if (cancel_first_) {
      expect(o.body.find("\"reason\":\"cancelled\"") != std::string::npos,
             "early cancel: reason is not cancelled");
    }
    static const char* const kReasons[] = {
        "inventory_rejected", "payment_failed",  "shipment_failed", "cancelled",
        "timeout:inventory",  "timeout:payment", "timeout:shipment"};
    bool known = false;
    for (const char* reason : kReasons)
      known =
          known || o.body.find(std::string("\"reason\":\"") + reason + "\"") != std::string::npos;
    expect(known, "an unknown reason");
  }

  void check_state(const StepResult& r) {
    const SagaState& s = r.state;
    expect(s.outcome_published == (outcomes_ > 0),
           "outcome_published disagrees with the outcomes seen");
    expect(s.compensations.size() == compensations_.size(), "compensations list disagrees");
    switch (s.status) {
      case SagaStatus::running:
      case SagaStatus::compensating:
        expect(r.deadline.has_value(), "waiting without a deadline");
        break;
      case SagaStatus::cancelled_before_start:
      case SagaStatus::confirmed:
      case SagaStatus::parked:
        expect(!r.deadline, "a deadline with nothing to wait for");
        break;
      case SagaStatus::stuck: {
        expect(!r.deadline, "stuck with a deadline");
        expect(outstanding_ >= 0 && comp_sends_[static_cast<std::size_t>(outstanding_)] ==
                                        def_.compensation_retries + 1,
               "stuck before all compensation re-sends");
        break;
      }
      case SagaStatus::failed:
        expect(r.deadline.has_value() == (outstanding_ >= 0), "failed: deadline vs outstanding");
        break;
    }
  }

  const SagaDefinition& def_;
  std::string order_;
  std::string total_json_;
  std::size_t n_;
  std::vector<bool> sent_;
  std::vector<int> sends_;
  std::vector<Report> report_;
  std::vector<bool> comp_issued_;
  std::vector<int> comp_sends_;
  std::vector<bool> failed_at_outcome_;
  std::vector<std::string> compensations_;
  int outstanding_ = -1;
  int last_forward_ = -1;
  int outcomes_ = 0;
  bool compensation_started_ = false;
  bool cancel_first_ = false;
  bool had_saga_ = false;
};

struct Stats {
  long steps = 0, confirmed = 0, failed = 0, stuck = 0, late = 0, dead = 0, ignored = 0,
       resends = 0;
};

std::string describe(const SagaInput& in, Millis now) {
  std::string s =
      in.is_timeout() ? std::string("timeout") : std::string(to_string(in.event()->type));
  return s + "@" + std::to_string(now - kT0) + " ";
}

void run_sequence(const SagaDefinition& def, Rng& rng, const std::string& order, Stats& stats) {
  static const std::pair<const char*, bool> kTotals[] = {
      {"99.99", false},           {"99.99", true}, {"0.1", false}, {"12", true},
      {"1234567890123.45", true}, {"0.01", false}};
  const auto& [total, quoted] = kTotals[rng.below(6)];
  const std::string total_json = quoted ? "\"" + std::string(total) + "\"" : std::string(total);

  Saga saga(def);
  Shadow shadow(def, order, total_json);
  std::vector<Event> delivered;
  std::vector<SagaMessage> emitted;
  std::string trace;

  auto feed = [&](const SagaInput& in) {
    trace += describe(in, saga.now);
    const std::optional<SagaState> before = saga.state;
    shadow.before(in, before ? &*before : nullptr);
    StepResult r = saga.apply(in);
    shadow.after(in, before ? &*before : nullptr, r);
    ++stats.steps;
    if (r.disposition == Disposition::dead_letter) ++stats.dead;
    if (r.disposition == Disposition::ignored) ++stats.ignored;
    if (r.outcome && r.outcome->type == EventType::order_confirmed) ++stats.confirmed;
    if (r.outcome && r.outcome->type == EventType::order_failed) ++stats.failed;
    if (r.disposition == Disposition::applied && r.state.status == SagaStatus::stuck &&
        (!before || before->status != SagaStatus::stuck)) {
      ++stats.stuck;
    }
    if (in.is_timeout() && !r.commands.empty()) ++stats.resends;
    if (before && before->outcome_published && !r.commands.empty()) ++stats.late;
    for (auto& c : r.commands) emitted.push_back(std::move(c));
    if (!shadow.error.empty()) {
      INFO("order " << order << ": " << trace);
      INFO("state: " << (saga.state ? saga.state->to_json() : std::string("none")));
      FAIL(shadow.error);
    }
  };
  auto deliver = [&](Event e) {
    delivered.push_back(e);
    feed(SagaInput(delivered.back()));
  };
  auto random_reply = [&]() {
    const auto& st =
        def.steps[static_cast<std::size_t>(rng.below(static_cast<int>(def.steps.size())))];
    const EventType types[] = {st.success, st.failure, st.compensation_ack};
    return reply(types[rng.below(3)], order, "ref_" + std::to_string(rng.below(1000)));
  };
  // A participant answering one of the commands sent so far (most often the latest).
  auto answer = [&]() -> std::optional<Event> {
    if (emitted.empty()) return std::nullopt;
    const std::size_t k =
        rng.chance(70) ? emitted.size() - 1
                       : static_cast<std::size_t>(rng.below(static_cast<int>(emitted.size())));
    const EventType cmd = emitted[k].type;
    for (const auto& st : def.steps) {
      if (st.command == cmd)
        return reply(rng.chance(80) ? st.success : st.failure, order, "ref_" + std::to_string(k));
      if (st.compensation == cmd) return reply(st.compensation_ack, order);
    }
    return std::nullopt;
  };

  // The first input: mostly order.created, sometimes a cancel or a stray reply first.
  const int first = rng.below(100);
  Event order_created = created(order, total, quoted);
  if (first < 80) {
    deliver(order_created);
  } else if (first < 90) {
    deliver(cancelled(order));
  } else {
    deliver(random_reply());
  }
  const int length = 1 + rng.below(60);
  for (int i = 0; i < length; ++i) {
    saga.now += rng.below(3000);
    const int pick = rng.below(100);
    if (pick < 38) {
      if (auto e = answer()) deliver(std::move(*e));
    } else if (pick < 52) {
      // A deadline fires when due (or a little after).
      if (saga.state && saga.state->deadline && *saga.state->deadline > saga.now) {
        saga.now = *saga.state->deadline + rng.below(50);
      }
      feed(SagaInput(Timeout{OrderId(order)}));
    } else if (pick < 56) {
      feed(SagaInput(Timeout{OrderId(order)}));  // early or stale: not due
    } else if (pick < 66) {
      if (!delivered.empty()) {
        const Event dup =
            delivered[static_cast<std::size_t>(rng.below(static_cast<int>(delivered.size())))];
        deliver(dup);  // a duplicate or re-ordered delivery
      }
    } else if (pick < 71) {
      deliver(order_created);
    } else if (pick < 76) {
      deliver(cancelled(order));
    } else {
      deliver(random_reply());
    }
  }
}

}  // namespace

TEST_CASE("random input sequences keep every saga invariant", "[engine][random]") {
  // Given the shipped definition and one with retries, short timeouts and few compensation re-sends
  SagaDefinition retrying = fulfillment();
  retrying.steps[0].timeout_ms = 1000;
  retrying.steps[1].timeout_ms = 2000;
  retrying.steps[1].retries = 1;
  retrying.steps[2].timeout_ms = 3000;
  retrying.steps[2].retries = 2;
  retrying.compensation_retries = 2;
  const SagaDefinition* defs[] = {&fulfillment(), &retrying};

  constexpr std::uint64_t kSeeds[] = {1, 2, 3, 42, 1337, 2024, 90210, 0xC0FFEE};
  constexpr int kSequencesPerSeed = 2500;
  Stats stats;
  for (std::uint64_t seed : kSeeds) {
    Rng rng{seed};
    for (int n = 0; n < kSequencesPerSeed; ++n) {
      // When a random sequence of inputs is applied, the invariants hold after every step
      run_sequence(*defs[rng.below(2)], rng,
                   "ord_" + std::to_string(seed) + "_" + std::to_string(n), stats);
    }
  }
  // Then the sequences did reach every kind of ending (the test explores, not just idles)
  CHECK(stats.confirmed > 100);
  CHECK(stats.failed > 1000);
  CHECK(stats.stuck > 10);
  CHECK(stats.late > 10);
  CHECK(stats.dead > 100);
  CHECK(stats.resends > 100);
  WARN("random saga steps: " << stats.steps << ", confirmed " << stats.confirmed << ", failed "
                             << stats.failed << ", stuck " << stats.stuck << ", late compensations "
                             << stats.late << ", dead-lettered " << stats.dead << ", ignored "
                             << stats.ignored << ", timeout re-sends " << stats.resends);
}
