// End-to-end helpers for the saga tests: a live AMQP observer (a durable queue bound to the
// exchanges we watch, consumed by a background thread that reconnects across broker restarts),
// a small envelope reader (simdjson, money kept as text), the CLI runner and the invariant
// checker of CONTRACT.md sections 2-4. The sagaflow binary is a black box here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sagaflow::e2e {

using Clock = std::chrono::steady_clock;
using Env = std::vector<std::pair<std::string, std::string>>;

// One message as the observer received it.
struct Observed {
  std::uint64_t seq = 0;  // arrival order in the observer queue
  Clock::time_point at;   // arrival time at the observer
  std::string exchange;
  std::string routing_key;
  std::string message_id;    // AMQP property (empty if absent)
  std::string content_type;  // AMQP property (empty if absent)
  int delivery_mode = 0;     // AMQP property (0 if absent)
  bool redelivered = false;
  std::string body;
};

// A durable queue bound to (exchange, routing key) pairs, consumed with manual acks by a
// background thread. It reconnects (re-declaring and re-binding) after any connection error,
// so it survives a RabbitMQ restart. With republish_replies, every participant reply it sees
// (inventory.*, payment.*, shipment.* on sagaflow.events, except the commands' own types) is
// published once more with the same body and routing key: live duplicate deliveries.
class Observer {
 public:
  Observer(int amqp_port, std::string queue,
           std::vector<std::pair<std::string, std::string>> bindings,
           bool republish_replies = false);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Blocks until the queue is declared and bound (at most 30 s; throws otherwise).
  void wait_bound();
  std::vector<Observed> snapshot() const;
  std::size_t size() const;
  std::size_t republished() const;
  std::size_t reconnects() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The fields of an envelope that the checks need. Money fields are the raw JSON token text
// (a number, or a string with its quotes), never a double.
struct Envelope {
  std::string id, type, saga_id, store_id, order_id, reason, customer_id, currency;
  std::string total_raw, amount_raw;
  bool has_compensated = false;
  std::vector<std::string> compensated;
  std::size_t items = 0;
};
// nullopt + error text if the body is not a JSON object.
std::optional<Envelope> parse_envelope(const std::string& body, std::string* error = nullptr);

// An exact decimal value from a money token ("99.99", "\"99.99\"", "7", "0.5"): (sign, digits
// before the point without leading zeros, fraction padded to 2 digits). nullopt if it is not a
// decimal with at most 2 fraction digits.
std::optional<std::string> money_value(std::string raw);

// Runs `sagaflow <args...>` to completion (at most `timeout`); SIGKILLs it on timeout.
struct CliResult {
  int code = -1;  // -1: timed out
  std::string out, err;
};
CliResult run_cli(const std::vector<std::string>& args, const Env& env,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// `sagaflow status --json`, parsed. nullopt (and `why`) if it failed or is not the expected shape.
struct Status {
  std::map<std::string, long long> sagas;
  long long dead_letter_depth = -1;
  long long rate_limited = -1;
  long long parked = -1;  // parked_total
  std::string raw;
};
std::optional<Status> read_status(const Env& env, std::string* why = nullptr);

// Orders we know were published: order_id -> total token (raw text).
using Orders = std::map<std::string, std::string>;

// The order.created events seen in the trace (first per order id).
Orders orders_from_trace(const std::vector<Observed>& trace);
// Order ids that have at least one outcome (order.confirmed / order.failed) in the trace.
std::map<std::string, std::string> outcome_types(const std::vector<Observed>& trace);

struct Report {
  std::vector<std::string> violations;  // empty: every invariant holds
  std::map<std::string, int> outcomes;  // "confirmed", "inventory_rejected", "timeout:payment", ...
  std::size_t commands = 0, replies = 0, outcome_messages = 0;
  std::size_t amount_text_differs =
      0;  // same value, other spelling (e.g. total "12.3", amount 12.30)
  std::string summary() const;
};
// Checks CONTRACT.md sections 2-3 over a trace that holds commands (sagaflow.commands #), the
// participants' replies and the outcomes (sagaflow.events), for the given orders.
Report check_sagas(const std::vector<Observed>& trace, const Orders& orders);

// Synthetic order.created lines: ids "<tag>_evt_<i>", orders "<tag>_ord_<i>", stores
// "<tag>_store_<i % stores>" (or `store` for all if given); totals exact, some as numbers and
// some as strings, some with 1 or 0 fraction digits.
struct GeneratedOrders {
  std::vector<std::string> lines;
  Orders orders;
};
GeneratedOrders generate_orders(const std::string& tag, int n, int stores,
                                const std::string& store = "");

// Writes lines (each + '\n') to a new temporary file; returns its path.
std::string write_temp_file(const std::string& name, const std::vector<std::string>& lines);

std::string tail(const std::string& text, std::size_t max = 3000);

// Seconds since t0.
double since(Clock::time_point t0);
// Polls `done` until it is true (true) or `timeout` passed (false).
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(200));

// Removes a file written by write_temp_file and its private directory.
struct TempFile {
  std::string path;
  explicit TempFile(std::string p) : path(std::move(p)) {}
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace sagaflow::e2e
