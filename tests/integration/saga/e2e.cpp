// See e2e.hpp.
#include "e2e.hpp"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <simdjson.h>

#include "support/servers.hpp"

namespace sagaflow::e2e {
namespace {

using std::chrono::milliseconds;

std::string bytes_text(const amqp_bytes_t& b) {
  return b.bytes == nullptr ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

bool reply_ok(const amqp_rpc_reply_t& r) {
  return r.reply_type == AMQP_RESPONSE_NORMAL;
}

const std::set<std::string>& reply_types() {
  static const std::set<std::string> types = {
      "inventory.reserved", "inventory.rejected", "inventory.released",
      "payment.completed",  "payment.failed",     "payment.refunded",
      "shipment.created",   "shipment.failed",    "shipment.cancelled"};
  return types;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Observer

struct Observer::Impl {
  int port;
  std::string queue;
  std::vector<std::pair<std::string, std::string>> bindings;
  bool republish;

  mutable std::mutex mutex;
  std::vector<Observed> messages;
  std::set<std::string> republished_keys;
  std::atomic<bool> stopping{false};
  std::atomic<bool> bound{false};
  std::atomic<std::size_t> reconnects{0};
  std::atomic<std::size_t> republished{0};
  std::string last_error;
  std::thread thread;

  void run() {
    bool first = true;
    while (!stopping) {
      if (!first) {
        ++reconnects;
        std::this_thread::sleep_for(milliseconds(200));
      }
      first = false;
      amqp_connection_state_t conn = amqp_new_connection();
      try {
        session(conn);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        last_error = e.what();
      }
      amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
      amqp_destroy_connection(conn);
    }
  }

  void session(amqp_connection_state_t conn) {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn);
    if (socket == nullptr) throw std::runtime_error("amqp_tcp_socket_new");
    timeval tv{5, 0};
    if (amqp_socket_open_noblock(socket, "127.0.0.1", port, &tv) != AMQP_STATUS_OK)
      throw std::runtime_error("observer connect failed");
    amqp_set_rpc_timeout(conn, &tv);
    if (!reply_ok(amqp_login(conn, "/", 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, "guest", "guest")))
      throw std::runtime_error("observer login failed");
    amqp_channel_open(conn, 1);
    if (!reply_ok(amqp_get_rpc_reply(conn)))
      throw std::runtime_error("observer channel.open failed");
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue.c_str()), 0, /*durable=*/1, 0, 0,
                       amqp_empty_table);
    if (!reply_ok(amqp_get_rpc_reply(conn)))
      throw std::runtime_error("observer queue.declare failed");
    for (const auto& [exchange, key] : bindings) {
      amqp_queue_bind(conn, 1, amqp_cstring_bytes(queue.c_str()),
                      amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes(key.c_str()),
                      amqp_empty_table);
      if (!reply_ok(amqp_get_rpc_reply(conn)))
        throw std::runtime_error("observer queue.bind " + exchange + " " + key + " failed");
    }
    amqp_basic_qos(conn, 1, 0, 500, 0);
    if (!reply_ok(amqp_get_rpc_reply(conn))) throw std::runtime_error("observer basic.qos failed");
    amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0,
                       /*no_ack=*/0, 0, amqp_empty_table);
    if (!reply_ok(amqp_get_rpc_reply(conn)))
      throw std::runtime_error("observer basic.consume failed");
    bound = true;

    while (!stopping) {
      amqp_maybe_release_buffers(conn);
      amqp_envelope_t envelope;
      timeval poll{0, 100000};
      const amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, &poll, 0);
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        continue;
      if (r.reply_type != AMQP_RESPONSE_NORMAL)
        throw std::runtime_error("observer consume: connection lost");
      Observed m;
      m.at = Clock::now();
      m.exchange = bytes_text(envelope.exchange);
      m.routing_key = bytes_text(envelope.routing_key);
      m.redelivered = envelope.redelivered != 0;
      const amqp_basic_properties_t& p = envelope.message.properties;
      if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) m.message_id = bytes_text(p.message_id);
      if ((p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0)
        m.content_type = bytes_text(p.content_type);
      if ((p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) != 0) m.delivery_mode = p.delivery_mode;
      m.body = bytes_text(envelope.message.body);
      const std::uint64_t tag = envelope.delivery_tag;
      amqp_destroy_envelope(&envelope);

      bool send_again = false;
      if (republish && m.exchange == "sagaflow.events" && reply_types().count(m.routing_key) != 0) {
        const std::string key = m.message_id.empty() ? m.body : m.message_id;
        std::lock_guard lock(mutex);
        send_again = republished_keys.insert(key).second;
      }
      if (send_again) {
        amqp_basic_properties_t props{};
        props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.delivery_mode = 2;
        props.content_type = amqp_cstring_bytes("application/json");
        if (!m.message_id.empty()) {
          props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
          props.message_id = amqp_cstring_bytes(m.message_id.c_str());
        }
        amqp_bytes_t body{m.body.size(), m.body.data()};
        if (amqp_basic_publish(conn, 1, amqp_cstring_bytes("sagaflow.events"),
                               amqp_cstring_bytes(m.routing_key.c_str()), 0, 0, &props,
                               body) != AMQP_STATUS_OK)
          throw std::runtime_error("observer republish failed");
        ++republished;
      }
      {
        std::lock_guard lock(mutex);
        m.seq = messages.size();
        messages.push_back(std::move(m));
      }
      if (amqp_basic_ack(conn, 1, tag, 0) != AMQP_STATUS_OK)
        throw std::runtime_error("observer ack failed");
    }
  }
};

Observer::Observer(int amqp_port, std::string queue,
                   std::vector<std::pair<std::string, std::string>> bindings,
                   bool republish_replies)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = amqp_port;
  impl_->queue = std::move(queue);
  impl_->bindings = std::move(bindings);
  impl_->republish = republish_replies;
  impl_->thread = std::thread([this] { impl_->run(); });
}

Observer::~Observer() {
  stop();
}

void Observer::stop() {
  impl_->stopping = true;
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Observer::wait_bound() {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!impl_->bound) {
    if (Clock::now() > deadline) {
      std::lock_guard lock(impl_->mutex);
      throw std::runtime_error("observer queue " + impl_->queue +
                               " not bound after 30 s: " + impl_->last_error);
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::vector<Observed> Observer::snapshot() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->messages;
}

std::size_t Observer::size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->messages.size();
}

std::size_t Observer::republished() const {
  return impl_->republished;
}
std::size_t Observer::reconnects() const {
  return impl_->reconnects;
}

// ---------------------------------------------------------------------------------------------
// Envelopes

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  return std::string(s);
}

bool read_string(simdjson::ondemand::value v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return false;
  out.assign(s);
  return true;
}

bool read_raw(simdjson::ondemand::value v, std::string& out) {
  out = trim(v.raw_json_token());
  return !out.empty();
}

}  // namespace

std::optional<Envelope> parse_envelope(const std::string& body, std::string* error) {
  auto fail = [&](const char* what) -> std::optional<Envelope> {
    if (error != nullptr) *error = what;
    return std::nullopt;
  };
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return fail("not JSON");
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return fail("not an object");
  Envelope e;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return fail("bad key");
    simdjson::ondemand::value v;
    if (field.value().get(v) != simdjson::SUCCESS) return fail("bad value");
    if (key == "id") {
      if (!read_string(v, e.id)) return fail("id not a string");
    } else if (key == "type") {
      if (!read_string(v, e.type)) return fail("type not a string");
    } else if (key == "saga_id") {
      if (!read_string(v, e.saga_id)) return fail("saga_id not a string");
    } else if (key == "store_id") {
      if (!read_string(v, e.store_id)) return fail("store_id not a string");
    } else if (key == "data") {
      simdjson::ondemand::object data;
      if (v.get_object().get(data) != simdjson::SUCCESS) return fail("data not an object");
      for (auto df : data) {
        std::string_view dk;
        if (df.unescaped_key().get(dk) != simdjson::SUCCESS) return fail("bad data key");
        simdjson::ondemand::value dv;
        if (df.value().get(dv) != simdjson::SUCCESS) return fail("bad data value");
        if (dk == "order_id") {
          if (!read_string(dv, e.order_id)) return fail("order_id not a string");
        } else if (dk == "reason") {
          if (!read_string(dv, e.reason)) return fail("reason not a string");
        } else if (dk == "customer_id") {
          if (!read_string(dv, e.customer_id)) return fail("customer_id not a string");
        } else if (dk == "currency") {
          if (!read_string(dv, e.currency)) return fail("currency not a string");
        } else if (dk == "total") {
          if (!read_raw(dv, e.total_raw)) return fail("bad total");
        } else if (dk == "amount") {
          if (!read_raw(dv, e.amount_raw)) return fail("bad amount");
        } else if (dk == "compensated") {
          simdjson::ondemand::array arr;
          if (dv.get_array().get(arr) != simdjson::SUCCESS) return fail("compensated not an array");
          e.has_compensated = true;
          for (auto el : arr) {
            simdjson::ondemand::value ev;
            if (el.get(ev) != simdjson::SUCCESS) return fail("bad compensated element");
            std::string s;
            if (!read_string(ev, s)) return fail("compensated element not a string");
            e.compensated.push_back(std::move(s));
          }
        } else if (dk == "items") {
          simdjson::ondemand::array arr;
          if (dv.get_array().get(arr) != simdjson::SUCCESS) return fail("items not an array");
          for (auto el : arr) {
            simdjson::ondemand::value ev;
            if (el.get(ev) != simdjson::SUCCESS) return fail("bad item");
            if (ev.raw_json_token().empty()) return fail("bad item");
            ++e.items;
          }
        }
      }
    }
  }
  return e;
}

std::optional<std::string> money_value(std::string raw) {
  raw = trim(raw);
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"')
    raw = raw.substr(1, raw.size() - 2);
  std::string sign;
  std::size_t i = 0;
  if (i < raw.size() && raw[i] == '-') {
    sign = "-";
    ++i;
  }
  std::string whole, frac;
  while (i < raw.size() && raw[i] >= '0' && raw[i] <= '9') whole += raw[i++];
  if (whole.empty()) return std::nullopt;
  if (i < raw.size() && raw[i] == '.') {
    ++i;
    while (i < raw.size() && raw[i] >= '0' && raw[i] <= '9') frac += raw[i++];
    if (frac.empty() || frac.size() > 2) return std::nullopt;
  }
  if (i != raw.size()) return std::nullopt;
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size() - 1));
  while (frac.size() < 2) frac += '0';
  if (whole == "0" && frac == "00") sign.clear();
  return sign + whole + "." + frac;
}

// ---------------------------------------------------------------------------------------------
// CLI

CliResult run_cli(const std::vector<std::string>& args, const Env& env,
                  std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{testing::sagaflow_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::Process p(argv, env, true);
  CliResult r;
  if (auto code = p.wait_for(timeout)) {
    r.code = *code;
  } else {
    p.signal(SIGKILL);
    p.wait_for(std::chrono::seconds(5));
    r.code = -1;
  }
  // The reader thread may still hold the last bytes for a moment after the exit.
  std::this_thread::sleep_for(milliseconds(20));
  r.out = p.read_stdout();
  r.err = p.read_stderr();
  return r;
}

std::optional<Status> read_status(const Env& env, std::string* why) {
  auto fail = [&](const std::string& w) -> std::optional<Status> {
    if (why != nullptr) *why = w;
    return std::nullopt;
  };
  const CliResult r = run_cli({"status", "--json"}, env, std::chrono::seconds(20));
  if (r.code != 0)
    return fail("status --json exited " + std::to_string(r.code) + ": " + tail(r.err, 500));
  Status s;
  s.raw = trim(r.out);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(s.raw).get(root) != simdjson::SUCCESS)
    return fail("status --json is not JSON: " + s.raw);
  simdjson::dom::object sagas;
  if (root["sagas"].get_object().get(sagas) != simdjson::SUCCESS)
    return fail("no sagas object: " + s.raw);
  for (auto [k, v] : sagas) {
    std::int64_t n = 0;
    if (v.get_int64().get(n) == simdjson::SUCCESS) s.sagas[std::string(k)] = n;
  }
  std::int64_t n = 0;
  if (root["dead_letter_depth"].get_int64().get(n) == simdjson::SUCCESS) s.dead_letter_depth = n;
  if (root["rate_limited"].get_int64().get(n) == simdjson::SUCCESS) s.rate_limited = n;
  if (root["parked_total"].get_int64().get(n) == simdjson::SUCCESS) s.parked = n;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Invariants

namespace {

struct Step {
  const char* name;
  const char* command;
  const char* success;
  const char* failure;
  const char* compensation;
  const char* ack;
};
constexpr std::array<Step, 3> kSteps{{
    {"inventory", "inventory.reserve", "inventory.reserved", "inventory.rejected",
     "inventory.release", "inventory.released"},
    {"payment", "payment.charge", "payment.completed", "payment.failed", "payment.refund",
     "payment.refunded"},
    {"shipment", "shipment.create", "shipment.created", "shipment.failed", "shipment.cancel",
     "shipment.cancelled"},
}};

int forward_step(const std::string& type) {
  for (int i = 0; i < 3; ++i)
    if (type == kSteps[static_cast<std::size_t>(i)].command) return i;
  return -1;
}
int compensation_step(const std::string& type) {
  for (int i = 0; i < 3; ++i)
    if (type == kSteps[static_cast<std::size_t>(i)].compensation) return i;
  return -1;
}

struct OrderTrace {
  std::map<std::string, std::uint64_t> command_first;  // command type -> first seq
  std::vector<std::string> compensations_in_order;     // distinct, by first arrival
  std::map<std::string, std::uint64_t> reply_first;    // reply type -> first seq
  std::map<std::string, std::uint64_t> outcome_first;  // outcome id -> first seq
  std::string outcome_type;
  std::optional<Envelope> outcome;
  std::vector<std::string> charge_amounts, refund_amounts;
};

std::string join(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out + "]";
}

}  // namespace

Orders orders_from_trace(const std::vector<Observed>& trace) {
  Orders orders;
  for (const auto& m : trace) {
    if (m.exchange != "sagaflow.events" || m.routing_key != "order.created") continue;
    auto e = parse_envelope(m.body);
    if (e && !e->order_id.empty()) orders.emplace(e->order_id, e->total_raw);
  }
  return orders;
}

std::map<std::string, std::string> outcome_types(const std::vector<Observed>& trace) {
  std::map<std::string, std::string> out;
  for (const auto& m : trace) {
    if (m.exchange != "sagaflow.events" ||
        (m.routing_key != "order.confirmed" && m.routing_key != "order.failed"))
      continue;
    auto e = parse_envelope(m.body);
    if (e && !e->order_id.empty()) out.emplace(e->order_id, m.routing_key);
  }
  return out;
}

std::string Report::summary() const {
  std::ostringstream os;
  os << "commands=" << commands << " replies=" << replies
     << " outcome messages=" << outcome_messages << " outcomes:";
  for (const auto& [k, v] : outcomes) os << " " << k << "=" << v;
  os << " amount-text-differs=" << amount_text_differs << " violations=" << violations.size();
  return os.str();
}

Report check_sagas(const std::vector<Observed>& trace, const Orders& orders) {
  Report rep;
  std::size_t total_violations = 0;
  auto violate = [&](const std::string& what) {
    ++total_violations;
    if (rep.violations.size() < 40) rep.violations.push_back(what);
  };
  std::map<std::string, OrderTrace> by_order;
  std::set<std::string> property_complaints;  // one complaint per kind

  for (const auto& m : trace) {
    const bool is_command = m.exchange == "sagaflow.commands";
    const bool is_outcome = m.exchange == "sagaflow.events" &&
                            (m.routing_key == "order.confirmed" || m.routing_key == "order.failed");
    const bool is_reply =
        m.exchange == "sagaflow.events" && reply_types().count(m.routing_key) != 0;
    if (!is_command && !is_outcome && !is_reply) continue;
    std::string err;
    auto e = parse_envelope(m.body, &err);
    if (!e) {
      violate("unparseable " + m.routing_key + " (" + err + "): " + m.body.substr(0, 200));
      continue;
    }
    OrderTrace& t = by_order[e->order_id];
    if (is_reply) {
      ++rep.replies;
      t.reply_first.emplace(e->type, m.seq);
      continue;
    }
    auto complain = [&](const std::string& kind, const std::string& what) {
      if (property_complaints.insert(kind).second) violate(what);
    };
    if (m.routing_key != e->type)
      complain("rk" + e->type, "routing key " + m.routing_key + " != type " + e->type);
    if (m.message_id != e->id)
      complain("mid" + e->type, "message_id '" + m.message_id + "' != envelope id " + e->id);
    if (m.delivery_mode != 2)
      complain("dm",
               e->type + " not persistent (delivery_mode " + std::to_string(m.delivery_mode) + ")");
    if (m.content_type != "application/json")
      complain("ct", e->type + " content_type '" + m.content_type + "'");
    if (e->order_id.empty()) {
      violate(e->type + " without data.order_id: " + m.body.substr(0, 200));
      continue;
    }
    if (is_command) {
      ++rep.commands;
      if (forward_step(e->type) < 0 && compensation_step(e->type) < 0)
        violate("unknown command type " + e->type);
      if (e->id != e->order_id + ":" + e->type)
        violate("command id " + e->id + " is not <order_id>:<type>");
      if (e->saga_id != "order_fulfillment:" + e->order_id)
        violate("command " + e->id + " saga_id '" + e->saga_id + "'");
      if (t.command_first.emplace(e->type, m.seq).second && compensation_step(e->type) >= 0)
        t.compensations_in_order.push_back(e->type);
      if (e->type == "payment.charge") t.charge_amounts.push_back(e->amount_raw);
      if (e->type == "payment.refund") t.refund_amounts.push_back(e->amount_raw);
    } else {
      ++rep.outcome_messages;
      const std::string expect_id = e->order_id + ":" + e->type;
      if (e->id != expect_id) violate("outcome id " + e->id + " != " + expect_id);
      const bool fresh = t.outcome_first.emplace(e->id, m.seq).second;
      if (fresh && !t.outcome) {
        t.outcome = e;
        t.outcome_type = e->type;
      } else if (t.outcome && t.outcome->id == e->id &&
                 (t.outcome->reason != e->reason || t.outcome->compensated != e->compensated)) {
        violate("outcome " + e->id + " re-sent with different content");
      }
    }
  }

  for (const auto& [order_id, t] : by_order) {
    // Replies for unknown orders are the test's own poison; commands or outcomes are the worker's.
    if (orders.count(order_id) == 0 && (!t.command_first.empty() || !t.outcome_first.empty()))
      violate("commands or outcomes for an order never (validly) published: " + order_id);
  }

  for (const auto& [order_id, total_raw] : orders) {
    auto it = by_order.find(order_id);
    if (it == by_order.end() || it->second.outcome_first.empty()) {
      violate(order_id + ": no outcome");
      continue;
    }
    const OrderTrace& t = it->second;
    if (t.outcome_first.size() != 1) {
      std::vector<std::string> ids;
      for (const auto& [id, seq] : t.outcome_first) ids.push_back(id);
      violate(order_id + ": " + std::to_string(ids.size()) + " distinct outcomes " + join(ids));
      continue;
    }
    const std::uint64_t outcome_seq = t.outcome_first.begin()->second;
    const Envelope& out = *t.outcome;

    // Money: payment.charge / payment.refund carry the order total exactly.
    const auto total = money_value(total_raw);
    for (const auto& a : t.charge_amounts) {
      const auto v = money_value(a);
      if (!total || !v || *v != *total)
        violate(order_id + ": payment.charge amount " + a + " != order total " + total_raw);
      else if (a != total_raw)
        ++rep.amount_text_differs;
    }
    for (const auto& a : t.refund_amounts) {
      const auto v = money_value(a);
      if (!a.empty() && (!total || !v || *v != *total))
        violate(order_id + ": payment.refund amount " + a + " != order total " + total_raw);
    }

    // Which forward steps ran, in step order.
    int last_forward = -1;
    std::uint64_t prev_seq = 0;
    for (int s = 0; s < 3; ++s) {
      auto c = t.command_first.find(kSteps[static_cast<std::size_t>(s)].command);
      if (c == t.command_first.end()) continue;
      if (s != last_forward + 1)
        violate(order_id + ": " + c->first + " sent but an earlier step's command was not");
      if (s > 0 && c->second < prev_seq)
        violate(order_id + ": " + c->first + " seen before the previous step's command");
      if (c->second > outcome_seq)
        violate(order_id + ": forward command " + c->first + " first seen after the outcome");
      last_forward = s;
      prev_seq = c->second;
    }

    if (t.outcome_type == "order.confirmed") {
      ++rep.outcomes["confirmed"];
      if (last_forward != 2)
        violate(order_id + ": confirmed but not all three forward commands were sent");
      if (!t.compensations_in_order.empty())
        violate(order_id + ": confirmed but compensations " + join(t.compensations_in_order) +
                " were sent");
      for (const auto& step : kSteps) {
        if (t.reply_first.count(step.success) == 0)
          violate(order_id + ": confirmed without " + step.success);
        if (t.reply_first.count(step.failure) != 0)
          violate(order_id + ": confirmed despite " + step.failure);
      }
      continue;
    }

    // order.failed
    ++rep.outcomes[out.reason.empty() ? "failed(no reason)" : out.reason];
    if (!out.has_compensated) violate(order_id + ": order.failed without data.compensated");
    int failed_step = -1;
    bool timeout = false;
    for (int s = 0; s < 3; ++s) {
      const Step& step = kSteps[static_cast<std::size_t>(s)];
      if (out.reason == std::string("timeout:") + step.name) {
        failed_step = s;
        timeout = true;
      }
    }
    if (out.reason == "inventory_rejected") failed_step = 0;
    if (out.reason == "payment_failed") failed_step = 1;
    if (out.reason == "shipment_failed") failed_step = 2;
    if (failed_step < 0) {
      violate(order_id + ": order.failed with unexpected reason '" + out.reason +
              "' (no order.cancelled was sent)");
      continue;
    }
    const Step& fs = kSteps[static_cast<std::size_t>(failed_step)];
    if (last_forward != failed_step)
      violate(order_id + ": reason " + out.reason + " but the last forward command sent was step " +
              std::to_string(last_forward));
    if (!timeout && t.reply_first.count(fs.failure) == 0)
      violate(order_id + ": reason " + out.reason + " but no " + fs.failure + " was seen");
    std::vector<std::string> expected;
    for (int s = failed_step - (timeout ? 0 : 1); s >= 0; --s)
      expected.emplace_back(kSteps[static_cast<std::size_t>(s)].compensation);
    if (out.compensated != expected)
      violate(order_id + ": reason " + out.reason + " compensated " + join(out.compensated) +
              ", expected " + join(expected));
    if (t.compensations_in_order != out.compensated)
      violate(order_id + ": compensated " + join(out.compensated) +
              " but the compensation commands seen were " + join(t.compensations_in_order));
    // One compensation at a time: each after the previous one's acknowledgement; outcome last.
    std::uint64_t after = 0;
    for (const auto& c : t.compensations_in_order) {
      const std::uint64_t seq = t.command_first.at(c);
      if (seq < after)
        violate(order_id + ": " + c + " sent before the previous compensation was acknowledged");
      const Step& st = kSteps[static_cast<std::size_t>(compensation_step(c))];
      auto ack = t.reply_first.find(st.ack);
      if (ack == t.reply_first.end()) {
        violate(order_id + ": " + c + " never acknowledged by the simulator");
      } else {
        after = ack->second;
      }
      if (seq > outcome_seq)
        violate(order_id + ": " + c + " listed in compensated but first seen after the outcome");
    }
    if (after > outcome_seq)
      violate(order_id + ": order.failed seen before the last compensation was acknowledged");
  }
  if (total_violations > rep.violations.size())
    rep.violations.push_back("... and " + std::to_string(total_violations - rep.violations.size()) +
                             " more");
  return rep;
}

// ---------------------------------------------------------------------------------------------
// Generated orders and files

namespace {

std::string cents_text(long long cents) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", cents / 100, cents % 100);
  return buf;
}

}  // namespace

GeneratedOrders generate_orders(const std::string& tag, int n, int stores,
                                const std::string& store) {
  GeneratedOrders g;
  std::uint64_t x = 0x9e3779b97f4a7c15ULL ^ std::hash<std::string>{}(tag);
  auto next = [&x](std::uint64_t mod) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % mod;
  };
  for (int i = 0; i < n; ++i) {
    struct Item {
      long long price;
      int qty;
    };
    std::vector<Item> items;
    switch (i) {
      case 0:
        items = {{9999, 1}};
        break;  // 99.99
      case 1:
        items = {{10, 3}};
        break;  // 0.1 x 3 = 0.30
      case 2:
        items = {{123456789, 1}};
        break;  // 1234567.89
      case 3:
        items = {{1999, 3}, {1, 1}};
        break;  // 59.98
      default: {
        const int k = 1 + static_cast<int>(next(3));
        for (int j = 0; j < k; ++j)
          items.push_back({1 + static_cast<long long>(next(50000)), 1 + static_cast<int>(next(3))});
      }
    }
    long long total = 0;
    std::string items_json = "[";
    for (std::size_t j = 0; j < items.size(); ++j) {
      total += items[j].price * items[j].qty;
      items_json += (j ? "," : "") + std::string(R"({"sku":"sku_)") + std::to_string(j) +
                    R"(","qty":)" + std::to_string(items[j].qty) + R"(,"price":)" +
                    cents_text(items[j].price) + "}";
    }
    items_json += "]";
    std::string total_json;
    switch (i % 4) {
      case 0:
        total_json = cents_text(total);
        break;  // 12.34
      case 1:
        total_json = "\"" + cents_text(total) + "\"";
        break;   // "12.34"
      case 2: {  // 12.3 or 12 when exact
        std::string t = cents_text(total);
        if (t.size() > 1 && t.back() == '0') t.pop_back();
        if (t.size() > 2 && t.substr(t.size() - 2) == ".0") t.resize(t.size() - 2);
        total_json = t;
        break;
      }
      default:
        total_json = "\"" + cents_text(total) + "\"";
        break;
    }
    const std::string order_id = tag + "_ord_" + std::to_string(i);
    const std::string store_id =
        store.empty() ? tag + "_store_" + std::to_string(i % std::max(stores, 1)) : store;
    std::string line = R"({"id":")" + tag + "_evt_" + std::to_string(i) +
                       R"(","type":"order.created","created":"2024-01-15T10:30:00Z","store_id":")" +
                       store_id + R"(","data":{"order_id":")" + order_id +
                       R"(","customer_id":"cus_)" + std::to_string(i % 37) + R"(","total":)" +
                       total_json + R"(,"currency":"EUR","items":)" + items_json + "}}";
    g.lines.push_back(std::move(line));
    g.orders.emplace(order_id, total_json);
  }
  return g;
}

std::string write_temp_file(const std::string& name, const std::vector<std::string>& lines) {
  char tmpl[] = "/tmp/sagaflow-e2e-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string path = std::string(dir) + "/" + name;
  std::ofstream f(path);
  for (const auto& l : lines) f << l << '\n';
  if (!f) throw std::runtime_error("cannot write " + path);
  return path;
}

std::string tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

TempFile::~TempFile() {
  std::error_code ignored;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path(), ignored);
}

}  // namespace sagaflow::e2e
