#pragma once
// One saga's state: everything a worker needs to continue it, wherever it ran before.
//
// Stored (format 2, append_record + append_order): a compact state, the full object below
// without the order facts (customer_id, total, currency, items) and without the derived fields
// (state, steps_done, pending_compensations), and the order facts on their own, which never
// change: the record writes them once, so a step rewrites a few hundred bytes less. Records of
// format 1 (the full object, order facts inside) are still read. Exact round trip: money and
// the items array keep their bytes. A format newer than this build's is a transient error
// (Errc::unavailable): a newer worker wrote it, so the event is retried, never dead-lettered.
//
// Printed by `sagaflow saga show` and the console: the full object (format 1), with
// "schema":1. Keys in this order; from_json accepts any order and skips unknown keys, so a
// newer writer's extra fields do not break an older reader:
//   {"schema":1,"saga":"order_fulfillment","order_id":"o1","state":"compensating",
//    "status":"compensating",                   the same as state (both names are read)
//    "outcome":"failed"?,                       only once an outcome was published
//    "reason":"payment_failed"?,"detail":"card declined"?,
//    "store_id":"s1"?,"customer_id":"c1"?,"total":99.99?,"currency":"EUR"?,"items":[...]?,
//    "steps":[{"name":"inventory","compensation":"inventory.release","status":"compensating",
//              "ref_id":"r1"?,"attempts":1,"compensation_attempts":1,"success_reported":true?},...],
//    "steps_done":["inventory"],                derived (ignored when read)
//    "compensations":["payment.refund"],        compensation commands issued, in order
//    "pending_compensations":["inventory.release"],  derived: outstanding, then still to send
//    "deadline_ms":1700000030000|null,
//    "history":[{"event":"order.created","at_ms":1700000000000},{"event":"timeout",...}]}
//                                               an input, a step's "timeout", or "started": a
//                                               parked saga began (its store's limit let it)
// The compact record writes a start as {"event":"timeout","at_ms":...,"started":true}: builds
// before the start had its own name read a timeout-like entry there and skip the unknown key
// (as they always showed it), so a record written by this build stays readable to them. One
// of them stepping the saga rewrites the entry without the key: the start then shows as a
// timeout again, as it did before (cosmetic; the saga's course does not read its history).
// Only the printed object (never stored, never read back by a worker) says "started".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/ids.hpp"
#include "core/money.hpp"
#include "core/result.hpp"

namespace sagaflow {

enum class SagaStatus : std::uint8_t {
  cancelled_before_start,  // an order.cancelled came first: remembered, no saga runs yet
  running,                 // a step's command is out, waiting for its reply
  compensating,            // undoing steps in reverse, one compensation at a time
  stuck,                   // a compensation was never acknowledged after all re-sends
  confirmed,               // order.confirmed published
  failed,                  // order.failed published (a late compensation may still be out)
  parked,  // order.created over its store's rate limit: recorded, waiting for a token
};

enum class StepStatus : std::uint8_t {
  not_started,
  pending,  // command sent, no reply yet
  succeeded,
  failed,        // the participant reported failure
  timed_out,     // no reply within the timeout and all re-sends
  compensating,  // compensation sent, not acknowledged yet
  compensated,
};

std::string_view to_string(SagaStatus s) noexcept;
std::string_view to_string(StepStatus s) noexcept;
std::optional<SagaStatus> saga_status_from(std::string_view s) noexcept;
std::optional<StepStatus> step_status_from(std::string_view s) noexcept;

struct StepState {
  std::string name;
  EventType compensation = EventType::inventory_release;  // from the definition, for `saga show`
  StepStatus status = StepStatus::not_started;
  std::string ref_id;             // reservation_id | payment_id | shipment_id, from the success
  int attempts = 0;               // sends of the command (1 = sent once)
  int compensation_attempts = 0;  // sends of the compensation
  bool success_reported = false;  // the participant reported success at some point

  friend bool operator==(const StepState&, const StepState&) = default;
};

struct HistoryEntry {
  std::optional<EventType> event;  // nullopt: a timeout fired, or (started) a parked start began
  Millis at = 0;
  bool started = false;  // with no event: the store's rate limit let this parked saga start

  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

inline constexpr std::size_t kMaxHistory = 32;

struct SagaState {
  std::string saga;  // the definition's name
  OrderId order_id;
  SagaStatus status = SagaStatus::running;
  bool outcome_published = false;  // order.confirmed / order.failed went out (exactly once)
  std::string reason;              // failure reason (CONTRACT.md), empty while none
  std::string detail;              // the participant's or the cancel's reason text, if any

  // The order, from order.created (empty in a cancelled_before_start marker).
  StoreId store_id;
  std::string customer_id;
  Money total;
  std::string currency;
  std::string items_json;  // raw JSON array, exactly as received

  std::vector<StepState> steps;          // one per definition step, same order
  std::vector<EventType> compensations;  // compensation commands issued, in order
  std::optional<Millis> deadline;        // when the outstanding command times out
  std::vector<HistoryEntry> history;     // the last kMaxHistory inputs applied and starts

  std::string_view status_name() const noexcept { return to_string(status); }
  // The outcome is decided (confirmed or failed): the record may expire after the dedup TTL.
  bool finished() const noexcept {
    return status == SagaStatus::confirmed || status == SagaStatus::failed;
  }
  bool has_order() const noexcept { return !items_json.empty(); }

  void add_history(std::optional<EventType> event, Millis at);
  // A parked saga starts ("started" in the history): its store's rate limit let it.
  void add_start(Millis at);
  // Compensation commands not acknowledged yet: the outstanding one, then those still to send.
  std::vector<EventType> pending_compensations() const;

  // The full object (format 1): what `saga show` prints, and what records held before format 2.
  std::string to_json() const;
  void append_json(std::string& out) const;
  // The stored record (format 2): the compact state (the full object without the order facts
  // and the derived fields), and the order facts on their own (customer_id, total, currency,
  // items; nothing when the saga has no order), which never change and are written once.
  void append_record(std::string& out) const;
  void append_order(std::string& out) const;
  // A full object (format 1), or a compact record.
  static Result<SagaState> from_json(std::string_view json);
  // A record: its state (format 1 or 2) and, for format 2, its order facts. A format newer
  // than this build's is Errc::unavailable (transient: a newer worker wrote it), anything else
  // unreadable Errc::rejected.
  static Result<SagaState> from_record(std::string_view state, std::string_view order);

  friend bool operator==(const SagaState& a, const SagaState& b);

 private:
  void append_object(std::string& out, bool full) const;
  void append_order_fields(std::string& out) const;
};

}  // namespace sagaflow
