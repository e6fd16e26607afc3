// The synthetic order.created of `sagaflow publish --generate`: valid envelopes, exact money,
// deterministic for a seed, unique ids.
#include <catch2/catch.hpp>

#include <set>

#include "core/envelope.hpp"
#include "producers/order_generator.hpp"

using namespace sagaflow;

TEST_CASE("generated orders are valid envelopes with exact money", "[generator]") {
  OrderGenerator gen(42, 5);
  EnvelopeParser parser;
  std::set<std::string> ids;
  for (int i = 0; i < 2000; ++i) {
    const GeneratedEvent e = gen.next();
    auto parsed = parser.parse(e.body);
    INFO(e.body);
    REQUIRE(parsed.ok());
    CHECK(parsed->type == EventType::order_created);
    CHECK(parsed->id.str() == e.id);
    CHECK(parsed->order_id.str() == e.order_id);
    CHECK(parsed->store_id.str() == e.store_id);
    // total written as a string with two fraction digits
    const std::string total = parsed->total.to_string();
    CHECK(total.size() >= 4);
    CHECK(total[total.size() - 3] == '.');
    ids.insert(e.id);
  }
  CHECK(ids.size() == 2000);
}

TEST_CASE("the same seed gives the same events, another seed other ids", "[generator]") {
  OrderGenerator a(7, 10);
  OrderGenerator b(7, 10);
  OrderGenerator c(8, 10);
  for (int i = 0; i < 100; ++i) {
    const auto ea = a.next();
    const auto eb = b.next();
    const auto ec = c.next();
    CHECK(ea.body == eb.body);
    CHECK(ea.id != ec.id);
  }
  std::set<std::string> stores;
  OrderGenerator d(1, 3);
  for (int i = 0; i < 300; ++i) stores.insert(d.next().store_id);
  CHECK(stores.size() == 3);
}
