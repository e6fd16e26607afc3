#pragma once
// Saga definitions as data (sagas/definitions/*.json, format in sagas/README.md).
//
// A definition names the steps of a saga in order; each step has a forward command, the
// events that report its success or failure, a compensation command and the event that
// acknowledges it, a timeout and a number of re-sends on timeout. Definitions are validated
// strictly once, at start-up: unknown keys, wrong types, unknown or misplaced event types and
// duplicate names are refused with Errc::invalid_config and a detail naming the file and the
// field ("order_fulfillment.json: steps[1].timeout_ms: must be a positive integer").
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/result.hpp"

namespace sagaflow {

inline constexpr int kDefaultCompensationRetries = 5;
inline constexpr std::size_t kMaxSagaSteps = 16;

struct StepDefinition {
  std::string name;  // "inventory": used in reasons ("timeout:inventory") and `saga show`
  EventType command = EventType::inventory_reserve;
  EventType success = EventType::inventory_reserved;
  EventType failure = EventType::inventory_rejected;
  EventType compensation = EventType::inventory_release;
  EventType compensation_ack = EventType::inventory_released;
  Millis timeout_ms = 30000;  // for the command and for the compensation
  int retries = 0;            // re-sends of the command on timeout before compensating
};

// What a reply event means to one definition.
enum class ReplyRole : std::uint8_t { none, success, failure, compensation_ack };

struct EventRole {
  int step = -1;  // index into SagaDefinition::steps; -1: not an event of this saga's steps
  ReplyRole role = ReplyRole::none;
};

// What a command type is to one definition: a step's forward command or its compensation.
struct CommandRole {
  int step = -1;  // index into SagaDefinition::steps; -1: not a command of this saga
  bool compensation = false;
};

// The saga the worker runs (CONTRACT.md section 3): order.created starts it.
inline constexpr std::string_view kOrderSagaName = "order_fulfillment";

struct SagaDefinition {
  std::string name;    // "order_fulfillment": saga_id is "<name>:<order_id>"
  std::string source;  // the file it came from, for messages
  std::vector<StepDefinition> steps;
  int compensation_retries = kDefaultCompensationRetries;  // re-sends of an unacked compensation

  // O(1) lookup of a reply type's step and role (filled by finalize()).
  EventRole role_of(EventType type) const noexcept {
    return roles_[static_cast<std::size_t>(type)];
  }
  // O(1) lookup of a command type's step and whether it is the step's compensation.
  CommandRole command_role(EventType type) const noexcept {
    return commands_[static_cast<std::size_t>(type)];
  }
  bool is_compensation(EventType type) const noexcept {
    const CommandRole r = command_role(type);
    return r.step >= 0 && r.compensation;
  }

  // Fills the lookup table from steps; the loaders call it. Call it again after editing steps.
  void finalize() noexcept;

 private:
  std::array<EventRole, kEventTypeCount> roles_{};
  std::array<CommandRole, kEventTypeCount> commands_{};
};

// Parses and validates one definition. file_name is used in error details only.
Result<SagaDefinition> parse_definition(std::string_view json, std::string_view file_name,
                                        Millis default_step_timeout_ms);

// Every *.json file of dir (sorted by name; other files are skipped). Errors: the folder is
// missing or holds no definition, a file is unreadable or invalid, two files define one name.
Result<std::vector<SagaDefinition>> load_definitions_from_dir(const std::string& dir,
                                                              Millis default_step_timeout_ms);

// The definitions shipped in sagas/definitions/, built into the binary.
Result<std::vector<SagaDefinition>> builtin_definitions(Millis default_step_timeout_ms);

// SAGAFLOW_SAGA_DIR semantics: a non-empty dir replaces the built-in definitions.
Result<std::vector<SagaDefinition>> load_definitions(const std::string& dir_or_empty,
                                                     Millis default_step_timeout_ms);

// The definition named name, or nullptr.
// The definition as data (the console draws it): {"name", "compensation_retries", "steps":
// [{"name", "command", "success", "failure", "compensation", "compensation_ack", "timeout_ms",
// "retries"}, ...]}.
std::string definition_to_json(const SagaDefinition& definition);

const SagaDefinition* find_definition(const std::vector<SagaDefinition>& defs,
                                      std::string_view name) noexcept;

}  // namespace sagaflow
