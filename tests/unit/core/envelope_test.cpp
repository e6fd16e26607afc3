// Envelope parsing and validation (CONTRACT.md section 2): one reason code per failure, a
// detail that names the field, exact money, and no crash on hostile input.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/envelope.hpp"

using namespace sagaflow;

namespace {

const std::string kOrder =
    R"({"id":"evt_1","type":"order.created","created":"2024-01-15T10:30:00Z","store_id":"store_7",)"
    R"("data":{"order_id":"ord_1","customer_id":"cus_1","total":"99.99","currency":"EUR",)"
    R"("items":[{"sku":"A-1","qty":2,"price":49.99},{"sku":"B","qty":1,"price":"0.01"}]}})";

std::string with(std::string body, const std::string& from, const std::string& to) {
  const auto pos = body.find(from);
  REQUIRE(pos != std::string::npos);
  body.replace(pos, from.size(), to);
  return body;
}

}  // namespace

TEST_CASE("a valid order.created is parsed with exact money and the items' exact bytes",
          "[envelope]") {
  EnvelopeParser p;
  auto e = p.parse(kOrder);
  REQUIRE(e.ok());
  CHECK(e->id.str() == "evt_1");
  CHECK(e->type == EventType::order_created);
  CHECK(e->store_id.str() == "store_7");
  CHECK(e->order_id.str() == "ord_1");
  CHECK(e->customer_id == "cus_1");
  CHECK(e->currency == "EUR");
  CHECK(e->total.minor_units() == 9999);
  std::string total;
  e->total.append_json(total);
  CHECK(total == "\"99.99\"");
  CHECK(e->items_json ==
        R"([{"sku":"A-1","qty":2,"price":49.99},{"sku":"B","qty":1,"price":"0.01"}])");
  CHECK(e->created == "2024-01-15T10:30:00Z");
}

TEST_CASE("every event type of the contract parses", "[envelope]") {
  EnvelopeParser p;
  const std::vector<std::pair<std::string, EventType>> cases = {
      {R"({"id":"1","type":"order.cancelled","data":{"order_id":"o","reason":"changed mind"}})",
       EventType::order_cancelled},
      {R"({"id":"1","type":"inventory.reserved","data":{"order_id":"o","reservation_id":"r"}})",
       EventType::inventory_reserved},
      {R"({"id":"1","type":"inventory.rejected","data":{"order_id":"o","reason":"oos"}})",
       EventType::inventory_rejected},
      {R"({"id":"1","type":"payment.completed","data":{"order_id":"o","payment_id":"p","amount":12.5}})",
       EventType::payment_completed},
      {R"({"id":"1","type":"payment.failed","data":{"order_id":"o","reason":"declined"}})",
       EventType::payment_failed},
      {R"({"id":"1","type":"shipment.created","data":{"order_id":"o","shipment_id":"s"}})",
       EventType::shipment_created},
      {R"({"id":"1","type":"shipment.failed","data":{"order_id":"o"}})",
       EventType::shipment_failed},
      {R"({"id":"1","type":"inventory.released","data":{"order_id":"o"}})",
       EventType::inventory_released},
      {R"({"id":"1","type":"payment.refunded","data":{"order_id":"o"}})",
       EventType::payment_refunded},
      {R"({"id":"1","type":"shipment.cancelled","data":{"order_id":"o"}})",
       EventType::shipment_cancelled},
      {R"({"id":"1","type":"inventory.reserve","saga_id":"x","data":{"order_id":"o","items":[{"sku":"a","qty":1,"price":1}]}})",
       EventType::inventory_reserve},
      {R"({"id":"1","type":"payment.charge","data":{"order_id":"o","amount":"1.00","currency":"EUR","customer_id":"c"}})",
       EventType::payment_charge},
      {R"({"id":"1","type":"shipment.create","data":{"order_id":"o","items":[{"sku":"a","qty":1,"price":1}]}})",
       EventType::shipment_create},
      {R"({"id":"1","type":"shipment.cancel","data":{"order_id":"o"}})",
       EventType::shipment_cancel},
      {R"({"id":"1","type":"payment.refund","data":{"order_id":"o","payment_id":"p","amount":"1.00"}})",
       EventType::payment_refund},
      {R"({"id":"1","type":"inventory.release","data":{"order_id":"o","reservation_id":"r"}})",
       EventType::inventory_release},
      {R"({"id":"1","type":"order.confirmed","data":{"order_id":"o"}})",
       EventType::order_confirmed},
      {R"({"id":"1","type":"order.failed","data":{"order_id":"o","reason":"cancelled","compensated":[]}})",
       EventType::order_failed},
  };
  for (const auto& [body, type] : cases) {
    CAPTURE(body);
    auto e = p.parse(body);
    REQUIRE(e.ok());
    CHECK(e->type == type);
    CHECK(e->order_id.str() == "o");
  }
  auto paid = p.parse(cases[3].first);
  CHECK(paid->ref_id == "p");
  REQUIRE(paid->amount);
  CHECK(paid->amount->to_string() == "12.5");
}

TEST_CASE("bad input: one reason code per failure and a detail naming the field", "[envelope]") {
  struct Case {
    std::string name;
    std::string body;
    Errc code;
    std::string detail;
  };
  std::string deep(10000, '[');
  std::string huge_total =
      with(kOrder, R"("total":"99.99")", R"("total":123456789012345678901234567890)");
  const std::vector<Case> cases = {
      {"invalid UTF-8", std::string("{\"id\":\"\xff\xfe\",\"type\":\"order.cancelled\"}"),
       Errc::malformed_json, "UTF-8"},
      {"empty", "", Errc::malformed_json, "empty"},
      {"not JSON", "{nope", Errc::malformed_json, "not JSON"},
      {"array", "[1,2]", Errc::malformed_json, "not a JSON object"},
      {"string", "\"x\"", Errc::malformed_json, "not a JSON object"},
      {"number", "42", Errc::malformed_json, "not a JSON object"},
      {"null", "null", Errc::malformed_json, "not a JSON object"},
      {"trailing garbage", kOrder + " x", Errc::malformed_json, "JSON"},
      {"two objects", kOrder + kOrder, Errc::malformed_json, "JSON"},
      {"deep nesting", deep, Errc::malformed_json, ""},
      {"deep nesting inside",
       with(kOrder, R"("currency":"EUR")",
            R"("currency":"EUR","x":)" + std::string(200, '[') + std::string(200, ']')),
       Errc::malformed_json, "deeper"},
      {"malformed inside an unknown field",
       with(kOrder, R"("currency":"EUR")", R"("currency":"EUR","x":[1,,2])"), Errc::malformed_json,
       ""},
      {"duplicate id", with(kOrder, R"("id":"evt_1")", R"("id":"evt_1","id":"evt_2")"),
       Errc::invalid_event, "duplicate key 'id'"},
      {"duplicate data",
       with(kOrder, R"("store_id":"store_7")", R"("store_id":"store_7","data":{})"),
       Errc::invalid_event, "duplicate key 'data'"},
      {"duplicate total", with(kOrder, R"("total":"99.99")", R"("total":"99.99","total":"1")"),
       Errc::invalid_event, "duplicate key 'data.total'"},
      {"huge number", huge_total, Errc::invalid_event, "data.total"},
      {"exponent", with(kOrder, R"("total":"99.99")", R"("total":1e2)"), Errc::invalid_event,
       "data.total"},
      {"negative", with(kOrder, R"("total":"99.99")", R"("total":-5)"), Errc::invalid_event,
       "negative"},
      {"3 fraction digits", with(kOrder, R"("total":"99.99")", R"("total":"9.999")"),
       Errc::invalid_event, "data.total"},
      {"non-numeric", with(kOrder, R"("total":"99.99")", R"("total":"ten")"), Errc::invalid_event,
       "data.total"},
      {"money as bool", with(kOrder, R"("total":"99.99")", R"("total":true)"), Errc::invalid_event,
       "data.total"},
      {"missing id", with(kOrder, R"("id":"evt_1",)", ""), Errc::invalid_event,
       "field 'id': is required"},
      {"id not a string", with(kOrder, R"("id":"evt_1")", R"("id":7)"), Errc::invalid_event,
       "field 'id': must be a string"},
      {"id too long", with(kOrder, R"("id":"evt_1")", "\"id\":\"" + std::string(129, 'x') + "\""),
       Errc::invalid_event, "at most 128"},
      {"empty id", with(kOrder, R"("id":"evt_1")", R"("id":"")"), Errc::invalid_event,
       "field 'id'"},
      {"missing type", with(kOrder, R"("type":"order.created",)", ""), Errc::invalid_event,
       "field 'type'"},
      {"unknown type", with(kOrder, "order.created", "order.shipped"), Errc::unknown_type,
       "order.shipped"},
      {"bad created", with(kOrder, "2024-01-15T10:30:00Z", "2024-02-30T10:30:00Z"),
       Errc::invalid_event, "field 'created'"},
      {"created not RFC 3339", with(kOrder, "2024-01-15T10:30:00Z", "yesterday"),
       Errc::invalid_event, "field 'created'"},
      {"missing store_id", with(kOrder, R"("store_id":"store_7",)", ""), Errc::invalid_event,
       "field 'store_id'"},
      {"missing data", R"({"id":"1","type":"order.cancelled"})", Errc::invalid_event,
       "field 'data': is required"},
      {"data not an object", R"({"id":"1","type":"order.cancelled","data":[1]})",
       Errc::invalid_event, "field 'data': must be an object"},
      {"missing order_id", R"({"id":"1","type":"order.cancelled","data":{}})", Errc::invalid_event,
       "data.order_id"},
      {"order_id wrong type", R"({"id":"1","type":"order.cancelled","data":{"order_id":1}})",
       Errc::invalid_event, "data.order_id"},
      {"currency", with(kOrder, R"("currency":"EUR")", R"("currency":"eu")"), Errc::invalid_event,
       "data.currency"},
      {"no items",
       with(kOrder,
            R"("items":[{"sku":"A-1","qty":2,"price":49.99},{"sku":"B","qty":1,"price":"0.01"}])",
            R"("items":[])"),
       Errc::invalid_event, "data.items"},
      {"items not array",
       with(kOrder,
            R"("items":[{"sku":"A-1","qty":2,"price":49.99},{"sku":"B","qty":1,"price":"0.01"}])",
            R"("items":{})"),
       Errc::invalid_event, "data.items"},
      {"qty zero", with(kOrder, R"("qty":2)", R"("qty":0)"), Errc::invalid_event,
       "data.items[0].qty"},
      {"qty fractional", with(kOrder, R"("qty":2)", R"("qty":1.5)"), Errc::invalid_event,
       "data.items[0].qty"},
      {"qty as string", with(kOrder, R"("qty":2)", R"("qty":"2")"), Errc::invalid_event,
       "data.items[0].qty"},
      {"sku missing", with(kOrder, R"("sku":"B",)", ""), Errc::invalid_event, "data.items[1].sku"},
      {"price bad", with(kOrder, R"("price":"0.01")", R"("price":"0.001")"), Errc::invalid_event,
       "data.items[1].price"},
      {"reply without its id", R"({"id":"1","type":"inventory.reserved","data":{"order_id":"o"}})",
       Errc::invalid_event, "data.reservation_id"},
      {"charge without amount",
       R"({"id":"1","type":"payment.charge","data":{"order_id":"o","currency":"EUR","customer_id":"c"}})",
       Errc::invalid_event, "data.amount"},
  };
  EnvelopeParser p;
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto e = p.parse(c.body);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == c.code);
    CHECK_THAT(e.error().detail, Catch::Contains(c.detail));
    CHECK(e.error().detail.find('\n') == std::string::npos);
  }
}

TEST_CASE("a body over the limit is too_large before any parsing", "[envelope]") {
  EnvelopeParser p;
  const std::string big(2 * 1024 * 1024, ' ');
  auto e = p.parse(big);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().code == Errc::too_large);
  EnvelopeParser small(512);
  CHECK(small.parse(kOrder).ok());
  CHECK(small.parse(kOrder + std::string(600, ' ')).error().code == Errc::too_large);
}

TEST_CASE("one parser and one Event are reused across many messages", "[envelope]") {
  EnvelopeParser p;
  Event e;
  for (int i = 0; i < 1000; ++i) {
    const std::string order = "ord_" + std::to_string(i);
    const std::string body = i % 2 == 0 ? with(kOrder, "ord_1", order)
                                        : R"({"id":"r)" + std::to_string(i) +
                                              R"(","type":"payment.failed","data":{"order_id":")" +
                                              order + "\"}}";
    REQUIRE(p.parse(body, e).ok());
    CHECK(e.order_id.str() == order);
    if (i % 2 == 0) {
      CHECK(e.total.minor_units() == 9999);
      CHECK_FALSE(e.items_json.empty());
    } else {
      CHECK(e.type == EventType::payment_failed);
      CHECK(e.items_json.empty());  // nothing left over from the previous message
      CHECK(e.customer_id.empty());
    }
  }
}

TEST_CASE("append_json_string escapes what JSON requires", "[envelope]") {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\n\x01", 7));
  CHECK(out == R"("a\"b\\c\n\u0001")");
  EnvelopeParser p;
  const std::string body = R"({"id":"1","type":"order.cancelled","data":{"order_id":)" + out + "}}";
  auto e = p.parse(body);
  REQUIRE(e.ok());
  CHECK(e->order_id.str() == std::string("a\"b\\c\n\x01", 7));
}
