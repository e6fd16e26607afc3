#include "sagas/engine.hpp"

#include <fmt/format.h>

#include "sagas/impl/messages.hpp"

namespace sagaflow {

namespace {

constexpr int kNoStep = -1;

bool compensable(StepStatus s) noexcept {
  // The command was sent and the step did not (only) report failure.
  return s == StepStatus::succeeded || s == StepStatus::pending || s == StepStatus::timed_out;
}

// "inventory.rejected" -> "inventory_rejected".
std::string failure_reason(EventType failure) {
  std::string r(to_string(failure));
  for (char& c : r) {
    if (c == '.') c = '_';
  }
  return r;
}

// One call of step(): the input, the current state and the result being built.
class Stepper {
 public:
  Stepper(const SagaDefinition& def, const SagaState* cur, Millis now)
      : def_(def), cur_(cur), now_(now) {}

  StepResult ignored() {
    r_.disposition = Disposition::ignored;
    return std::move(r_);
  }

  StepResult dead_letter(Errc code, std::string detail) {
    r_.disposition = Disposition::dead_letter;
    r_.error = make_error(code, std::move(detail));
    return std::move(r_);
  }

  StepResult applied() {
    r_.disposition = Disposition::applied;
    r_.deadline = r_.state.deadline;
    return std::move(r_);
  }

  // Starts an applied change from the current state (copied once, only when something changes).
  SagaState& change(std::optional<EventType> input) {
    r_.state = *cur_;
    r_.state.add_history(input, now_);
    return r_.state;
  }

  // A fresh state for an order with no saga yet.
  SagaState& fresh(const Event& e, SagaStatus status) {
    SagaState& s = r_.state;
    s.saga = def_.name;
    s.order_id = e.order_id;
    s.status = status;
    s.steps.resize(def_.steps.size());
    for (std::size_t i = 0; i < def_.steps.size(); ++i) {
      s.steps[i].name = def_.steps[i].name;
      s.steps[i].compensation = def_.steps[i].compensation;
    }
    s.add_history(e.type, now_);
    return s;
  }

  static void take_order(SagaState& s, const Event& e) {
    s.store_id = e.store_id;
    s.customer_id = e.customer_id;
    s.total = e.total;
    s.currency = e.currency;
    s.items_json = e.items_json;
  }

  // Sends (or re-sends, same id) step i's command and waits for its reply.
  void send_command(int i) {
    SagaState& s = r_.state;
    StepState& st = s.steps[static_cast<std::size_t>(i)];
    const EventType type = def_.steps[static_cast<std::size_t>(i)].command;
    st.status = StepStatus::pending;
    ++st.attempts;
    emit_command(type, st.ref_id);
    s.deadline = now_ + def_.steps[static_cast<std::size_t>(i)].timeout_ms;
  }

  // Sends (or re-sends, same id) step i's compensation and waits for its ack.
  void send_compensation(int i, bool resend) {
    SagaState& s = r_.state;
    StepState& st = s.steps[static_cast<std::size_t>(i)];
    const EventType type = def_.steps[static_cast<std::size_t>(i)].compensation;
    if (!resend) {
      st.status = StepStatus::compensating;
      s.compensations.push_back(type);
    }
    ++st.compensation_attempts;
    emit_command(type, st.ref_id);
    s.deadline = now_ + def_.steps[static_cast<std::size_t>(i)].timeout_ms;
  }

  void emit_command(EventType type, std::string_view ref_id) {
    SagaMessage& m = r_.commands.emplace_back();
    m.type = type;
    m.id = impl::message_id(r_.state.order_id, type);
    m.body = impl::command_body(r_.state, type, m.id, ref_id, now_);
  }

  void publish_outcome(EventType type) {
    SagaState& s = r_.state;
    s.outcome_published = true;
    SagaMessage& m = r_.outcome.emplace();
    m.type = type;
    m.id = impl::message_id(s.order_id, type);
    m.body = impl::outcome_body(s, type, m.id, now_);
  }

  // With no compensation outstanding: send the next one (the highest step still to undo), or
  // end the saga with order.failed (once; a late compensation after it publishes nothing).
  void continue_compensation() {
    SagaState& s = r_.state;
    for (const auto& st : s.steps) {
      if (st.status == StepStatus::compensating) return;  // one at a time: wait for its ack
    }
    for (int i = static_cast<int>(s.steps.size()) - 1; i >= 0; --i) {
      if (compensable(s.steps[static_cast<std::size_t>(i)].status)) {
        s.status = s.outcome_published ? SagaStatus::failed : SagaStatus::compensating;
        send_compensation(i, false);
        return;
      }
    }
    s.deadline.reset();
    s.status = SagaStatus::failed;
    if (!s.outcome_published) publish_outcome(EventType::order_failed);
  }

  void start_compensation(SagaState& s, std::string reason, std::string_view detail) {
    s.reason = std::move(reason);
    s.detail.assign(detail.data(), detail.size());
    s.status = SagaStatus::compensating;
    continue_compensation();
  }

  StepResult on_created(const Event& e);
  StepResult on_park(const Event& e) {
    SagaState& s = fresh(e, SagaStatus::parked);
    take_order(s, e);
    return applied();
  }
  StepResult on_start_parked() {
    if (cur_->status != SagaStatus::parked) return ignored();
    r_.state = *cur_;
    SagaState& s = r_.state;
    s.add_start(now_);
    s.status = SagaStatus::running;
    send_command(0);
    return applied();
  }
  StepResult on_cancelled(const Event& e);
  StepResult on_reply(const Event& e, EventRole role);
  StepResult on_timeout();
  StepResult on_resend();

 private:
  const SagaDefinition& def_;
  const SagaState* cur_;
  Millis now_;
  StepResult r_;
};

int find_step(const SagaState& s, StepStatus status) noexcept {
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    if (s.steps[i].status == status) return static_cast<int>(i);
  }
  return kNoStep;
}

StepResult Stepper::on_created(const Event& e) {
  if (cur_ == nullptr) {
    SagaState& s = fresh(e, SagaStatus::running);
    take_order(s, e);
    send_command(0);
    return applied();
  }
  if (cur_->status != SagaStatus::cancelled_before_start) return ignored();  // one saga per order
  // The cancel came first: end at once, no command.
  SagaState& s = change(e.type);
  take_order(s, e);
  s.reason = "cancelled";
  s.status = SagaStatus::failed;
  s.deadline.reset();
  publish_outcome(EventType::order_failed);
  return applied();
}

StepResult Stepper::on_cancelled(const Event& e) {
  if (cur_ == nullptr) {
    SagaState& s = fresh(e, SagaStatus::cancelled_before_start);
    s.store_id = e.store_id;
    s.detail = e.reason;
    return applied();
  }
  if (cur_->status == SagaStatus::parked) {
    // Nothing was sent yet: it ends at once, and its place in the queue is freed.
    SagaState& s = change(e.type);
    s.reason = "cancelled";
    s.detail = e.reason;
    s.status = SagaStatus::failed;
    s.deadline.reset();
    publish_outcome(EventType::order_failed);
    return applied();
  }
  if (cur_->status != SagaStatus::running) return ignored();
  SagaState& s = change(e.type);
  start_compensation(s, "cancelled", e.reason);
  return applied();
}

StepResult Stepper::on_reply(const Event& e, EventRole role) {
  const auto i = static_cast<std::size_t>(role.step);
  const StepStatus st = cur_->steps[i].status;
  const SagaStatus status = cur_->status;
  switch (role.role) {
    case ReplyRole::success: {
      if (status == SagaStatus::running && st == StepStatus::pending) {
        SagaState& s = change(e.type);
        StepState& step_state = s.steps[i];
        step_state.status = StepStatus::succeeded;
        step_state.success_reported = true;
        step_state.ref_id = e.ref_id;
        if (i + 1 < s.steps.size()) {
          send_command(role.step + 1);
        } else {
          s.status = SagaStatus::confirmed;
          s.deadline.reset();
          publish_outcome(EventType::order_confirmed);
        }
        return applied();
      }
      // A late success, after compensation began or the saga failed, for a step that
      // reported failure earlier: it did happen after all, so it is undone too.
      const bool undoing = status == SagaStatus::compensating || status == SagaStatus::stuck ||
                           (status == SagaStatus::failed && cur_->outcome_published);
      if (undoing && st == StepStatus::failed) {
        SagaState& s = change(e.type);
        StepState& step_state = s.steps[i];
        step_state.status = StepStatus::succeeded;
        step_state.success_reported = true;
        step_state.ref_id = e.ref_id;
        if (status != SagaStatus::stuck)
          continue_compensation();  // stuck: queued behind the stuck one
        return applied();
      }
      return ignored();
    }
    case ReplyRole::failure: {
      if (status != SagaStatus::running || st != StepStatus::pending) return ignored();
      SagaState& s = change(e.type);
      s.steps[i].status = StepStatus::failed;
      start_compensation(s, failure_reason(e.type), e.reason);
      return applied();
    }
    case ReplyRole::compensation_ack: {
      if (st != StepStatus::compensating) return ignored();
      SagaState& s = change(e.type);
      s.steps[i].status = StepStatus::compensated;
      s.deadline.reset();
      continue_compensation();  // also resumes a stuck saga
      return applied();
    }
    case ReplyRole::none:
      break;
  }
  return ignored();
}

StepResult Stepper::on_resend() {
  if (cur_ == nullptr || cur_->status != SagaStatus::stuck) return ignored();
  const int i = find_step(*cur_, StepStatus::compensating);
  if (i == kNoStep) return ignored();
  r_.state = *cur_;            // no history entry: an operator's action, not an input of the saga
  send_compensation(i, true);  // same id; the saga stays stuck until the ack arrives
  r_.state.deadline.reset();
  return applied();
}

StepResult Stepper::on_timeout() {
  if (cur_ == nullptr || !cur_->deadline || *cur_->deadline > now_) return ignored();
  if (cur_->status == SagaStatus::running) {
    const int i = find_step(*cur_, StepStatus::pending);
    if (i == kNoStep) return ignored();
    const StepDefinition& d = def_.steps[static_cast<std::size_t>(i)];
    SagaState& s = change(std::nullopt);
    StepState& st = s.steps[static_cast<std::size_t>(i)];
    if (st.attempts <= d.retries) {
      send_command(i);  // re-send, same id
      return applied();
    }
    st.status = StepStatus::timed_out;
    start_compensation(s, "timeout:" + d.name, {});
    return applied();
  }
  if (cur_->status == SagaStatus::compensating || cur_->status == SagaStatus::failed) {
    const int i = find_step(*cur_, StepStatus::compensating);
    if (i == kNoStep) return ignored();
    SagaState& s = change(std::nullopt);
    if (s.steps[static_cast<std::size_t>(i)].compensation_attempts <= def_.compensation_retries) {
      send_compensation(i, true);  // re-send, same id
      return applied();
    }
    s.status = SagaStatus::stuck;  // parked until the ack still arrives
    s.deadline.reset();
    return applied();
  }
  return ignored();
}

}  // namespace

std::string saga_id(const SagaDefinition& definition, const OrderId& order) {
  std::string id;
  id.reserve(definition.name.size() + 1 + order.view().size());
  id += definition.name;
  id += ':';
  id += order.view();
  return id;
}

std::string_view order_of_message(std::string_view message_id) noexcept {
  const auto colon = message_id.rfind(':');
  return colon == std::string_view::npos ? std::string_view() : message_id.substr(0, colon);
}

bool still_wanted(const SagaDefinition& definition, const SagaState& state, EventType command) {
  if (is_outcome(command)) return true;
  const CommandRole role = definition.command_role(command);
  if (role.step < 0 || static_cast<std::size_t>(role.step) >= state.steps.size()) return false;
  const StepStatus status = state.steps[static_cast<std::size_t>(role.step)].status;
  if (role.compensation) return status == StepStatus::compensating;
  return state.status == SagaStatus::running && status == StepStatus::pending;
}

StepResult resend_stuck(const SagaDefinition& definition, const SagaState& current, Millis now) {
  Stepper stepper(definition, &current, now);
  if (current.saga != definition.name || current.steps.size() != definition.steps.size())
    return stepper.ignored();
  return stepper.on_resend();
}

StepResult step(const SagaDefinition& definition, const SagaState* current, const SagaInput& input,
                Millis now) {
  Stepper stepper(definition, current, now);
  if (current != nullptr) {
    if (current->order_id != input.order_id()) {
      return stepper.dead_letter(Errc::internal,
                                 fmt::format("saga state of order '{}' given for order '{}'",
                                             current->order_id.view(), input.order_id().view()));
    }
    if (current->saga != definition.name || current->steps.size() != definition.steps.size()) {
      return stepper.dead_letter(
          Errc::internal,
          fmt::format(
              "saga record of order '{}' ({}, {} steps) does not match definition {} ({} steps)",
              current->order_id.view(), current->saga, current->steps.size(), definition.name,
              definition.steps.size()));
    }
  }
  if (input.is_timeout()) return stepper.on_timeout();
  const Event& e = *input.event();
  switch (e.type) {
    case EventType::order_created:
      return stepper.on_created(e);
    case EventType::order_cancelled:
      return stepper.on_cancelled(e);
    default:
      break;
  }
  if (!is_saga_input(e.type)) {
    return stepper.dead_letter(Errc::unknown_type,
                               fmt::format("'{}' is not a saga input", to_string(e.type)));
  }
  if (current == nullptr || current->status == SagaStatus::cancelled_before_start) {
    return stepper.dead_letter(
        Errc::unknown_saga,
        fmt::format("{} for order '{}', which has no saga", to_string(e.type), e.order_id.view()));
  }
  const EventRole role = definition.role_of(e.type);
  if (role.step < 0) return stepper.ignored();  // an input this saga has no use for
  if (current->status == SagaStatus::parked) return stepper.ignored();  // no command went out
  return stepper.on_reply(e, role);
}

StepResult park(const SagaDefinition& definition, const Event& created, Millis now) {
  Stepper stepper(definition, nullptr, now);
  if (created.type != EventType::order_created) {
    return stepper.dead_letter(Errc::internal, "only an order.created can be parked");
  }
  return stepper.on_park(created);
}

StepResult start_parked(const SagaDefinition& definition, const SagaState& parked, Millis now) {
  Stepper stepper(definition, &parked, now);
  if (parked.saga != definition.name || parked.steps.size() != definition.steps.size()) {
    return stepper.dead_letter(Errc::internal, "parked saga does not match the definition");
  }
  return stepper.on_start_parked();
}

}  // namespace sagaflow
