// The invariant checker of the e2e tests has teeth: a correct synthetic trace passes, and each
// kind of contract violation in it is reported. No servers needed.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "e2e.hpp"

using sagaflow::e2e::check_sagas;
using sagaflow::e2e::money_value;
using sagaflow::e2e::Observed;
using sagaflow::e2e::Orders;

namespace {

struct Trace {
  std::vector<Observed> msgs;
  void add(const std::string& exchange, const std::string& type, const std::string& id,
           const std::string& body) {
    Observed m;
    m.seq = msgs.size();
    m.exchange = exchange;
    m.routing_key = type;
    m.message_id = id;
    m.content_type = "application/json";
    m.delivery_mode = 2;
    m.body = body;
    msgs.push_back(m);
  }
  void command(const std::string& order, const std::string& type, const std::string& amount = "") {
    const std::string id = order + ":" + type;
    std::string data = R"({"order_id":")" + order + "\"";
    if (!amount.empty()) data += R"(,"amount":)" + amount + R"(,"currency":"EUR")";
    data += "}";
    add("sagaflow.commands", type, id,
        R"({"id":")" + id + R"(","type":")" + type + R"(","saga_id":"order_fulfillment:)" + order +
            R"(","data":)" + data + "}");
  }
  void reply(const std::string& order, const std::string& type) {
    const std::string id = "sim_" + order + "_" + type;
    add("sagaflow.events", type, id,
        R"({"id":")" + id + R"(","type":")" + type + R"(","data":{"order_id":")" + order +
            R"("}})");
  }
  void confirmed(const std::string& order) {
    const std::string id = order + ":order.confirmed";
    add("sagaflow.events", "order.confirmed", id,
        R"({"id":")" + id + R"(","type":"order.confirmed","data":{"order_id":")" + order +
            R"("}})");
  }
  void failed(const std::string& order, const std::string& reason, const std::string& compensated) {
    const std::string id = order + ":order.failed";
    add("sagaflow.events", "order.failed", id,
        R"({"id":")" + id + R"(","type":"order.failed","data":{"order_id":")" + order +
            R"(","reason":")" + reason + R"(","compensated":)" + compensated + "}}");
  }
};

// A: confirmed. B: payment failed after inventory. C: shipment timed out.
Trace good() {
  Trace t;
  t.command("A", "inventory.reserve");
  t.command("B", "inventory.reserve");
  t.command("C", "inventory.reserve");
  t.reply("A", "inventory.reserved");
  t.reply("B", "inventory.reserved");
  t.reply("C", "inventory.reserved");
  t.command("A", "payment.charge", "99.99");
  t.command("B", "payment.charge", "\"0.30\"");
  t.command("C", "payment.charge", "12.30");
  t.reply("A", "payment.completed");
  t.reply("B", "payment.failed");
  t.reply("C", "payment.completed");
  t.command("B", "inventory.release");
  t.command("A", "shipment.create");
  t.command("C", "shipment.create");
  t.reply("B", "inventory.released");
  t.failed("B", "payment_failed", R"(["inventory.release"])");
  t.reply("A", "shipment.created");
  t.confirmed("A");
  t.command("C", "shipment.cancel");
  t.reply("C", "shipment.cancelled");
  t.command("C", "payment.refund", "12.3");
  t.reply("C", "payment.refunded");
  t.command("C", "inventory.release");
  t.reply("C", "inventory.released");
  t.failed("C", "timeout:shipment", R"(["shipment.cancel","payment.refund","inventory.release"])");
  return t;
}

const Orders kOrders = {{"A", "99.99"}, {"B", "0.3"}, {"C", "\"12.30\""}};

std::string all(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST_CASE("e2e checker: money values are compared exactly") {
  CHECK(money_value("99.99") == "99.99");
  CHECK(money_value("\"99.99\" ") == "99.99");
  CHECK(money_value("12.3") == "12.30");
  CHECK(money_value("007") == "7.00");
  CHECK(money_value("0") == "0.00");
  CHECK_FALSE(money_value("99.98999").has_value());
  CHECK_FALSE(money_value("1e2").has_value());
  CHECK_FALSE(money_value("").has_value());
}

TEST_CASE("e2e checker: a correct trace passes") {
  const auto r = check_sagas(good().msgs, kOrders);
  INFO(all(r.violations));
  CHECK(r.violations.empty());
  CHECK(r.outcomes.at("confirmed") == 1);
  CHECK(r.outcomes.at("payment_failed") == 1);
  CHECK(r.outcomes.at("timeout:shipment") == 1);
}

TEST_CASE("e2e checker: each violation is reported") {
  auto violations = [](const Trace& t, const Orders& orders = kOrders) {
    return check_sagas(t.msgs, orders).violations;
  };
  SECTION("an order without outcome") {
    Orders more = kOrders;
    more.emplace("D", "1.00");
    CHECK_FALSE(violations(good(), more).empty());
  }
  SECTION("two different outcomes") {
    Trace t = good();
    t.failed("A", "payment_failed", R"(["inventory.release"])");
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a charge amount that is not the total") {
    Trace t = good();
    t.command("A", "payment.charge", "99.98999");
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a compensation for a confirmed order") {
    Trace t = good();
    t.msgs.insert(t.msgs.begin(), t.msgs.front());
    t.msgs.front().routing_key = "inventory.release";
    t.msgs.front().message_id = "A:inventory.release";
    t.msgs.front().body =
        R"({"id":"A:inventory.release","type":"inventory.release","saga_id":"order_fulfillment:A","data":{"order_id":"A"}})";
    for (std::size_t i = 0; i < t.msgs.size(); ++i) t.msgs[i].seq = i;
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a forward command first sent after the outcome") {
    Trace t = good();
    t.command("B", "shipment.create");
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a compensated list that misses a step") {
    Trace t;
    for (const auto& m : good().msgs)
      if (m.body.find("\"C:order.failed\"") == std::string::npos) t.msgs.push_back(m);
    t.failed("C", "timeout:shipment", R"(["payment.refund","inventory.release"])");
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a command id that is not <order_id>:<type>") {
    Trace t = good();
    t.msgs[0].body =
        R"({"id":"x1","type":"inventory.reserve","saga_id":"order_fulfillment:A","data":{"order_id":"A"}})";
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("a non-persistent outcome") {
    Trace t = good();
    t.msgs.back().delivery_mode = 1;
    CHECK_FALSE(violations(t).empty());
  }
  SECTION("compensations issued together, not one after the other's acknowledgement") {
    Trace t;
    for (const auto& m : good().msgs) {
      if (m.body.find("\"C:payment.refund\"") != std::string::npos) continue;
      t.msgs.push_back(m);
      if (m.body.find("\"C:shipment.cancel\"") != std::string::npos)
        t.command("C", "payment.refund", "12.3");
    }
    for (std::size_t i = 0; i < t.msgs.size(); ++i) t.msgs[i].seq = i;
    CHECK_FALSE(violations(t).empty());
  }
}
