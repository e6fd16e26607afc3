// A delivery's record as kept in Redis: the JSON round trip, the last 10 attempts kept.
#include <catch2/catch.hpp>

#include "delivery/record.hpp"

using namespace sagaflow;
using namespace sagaflow::delivery;

TEST_CASE("a delivery record survives its JSON round trip", "[delivery][record]") {
  DeliveryRecord r;
  r.state = DeliveryState::dead;
  r.attempts = 3;
  r.scheduled = 3;
  r.last_status = 503;
  r.next_at_ms = 0;
  r.add({1700000000000, 500, "", 12});
  r.add({1700000001000, 0, "connection refused: \"127.0.0.1\"\n", 1});
  const auto back = record_from_json(to_json(r));
  REQUIRE(back.ok());
  CHECK(back->state == DeliveryState::dead);
  CHECK(back->attempts == 3);
  CHECK(back->scheduled == 3);
  CHECK(back->last_status == 503);
  REQUIRE(back->log.size() == 2);
  CHECK(back->log[1].error == "connection refused: \"127.0.0.1\"\n");
  CHECK(back->log[0].status == 500);
  CHECK(back->log[0].latency_ms == 12);
  CHECK(back->log[1].at_ms == 1700000001000);
}

TEST_CASE("only the last 10 attempts are kept, oldest dropped first", "[delivery][record]") {
  DeliveryRecord r;
  for (int i = 0; i < 15; ++i) r.add({i, 500 + i, "", 0});
  REQUIRE(r.log.size() == kAttemptsKept);
  CHECK(r.log.front().at_ms == 5);
  CHECK(r.log.back().at_ms == 14);
}

TEST_CASE("a record that is not one is refused with a reason", "[delivery][record]") {
  CHECK_FALSE(record_from_json("").ok());
  CHECK_FALSE(record_from_json("[1]").ok());
  CHECK_FALSE(record_from_json(R"({"attempts":1})").ok());
  const auto odd = record_from_json(R"({"state":"exploded"})");
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.error().detail.find("exploded") != std::string::npos);
}
