// kafka::broker_up: which statistics documents show a real broker UP.
#include <catch2/catch.hpp>

#include <string>

#include "clients/kafka/statistics.hpp"

using sagaflow::kafka::broker_up;

namespace {

std::string broker(const std::string& source, const std::string& state) {
  return R"({"name":"127.0.0.1:9092/1","nodeid":1,"nodename":"127.0.0.1:9092","source":")" +
         source + R"(","state":")" + state + R"(","stateage":1234})";
}

std::string stats(const std::string& brokers) {
  return R"({"name":"rdkafka#producer-1","type":"producer","ts":1,"brokers":{)" + brokers +
         R"(},"topics":{}})";
}

}  // namespace

TEST_CASE("a learned or configured broker in state UP is up", "[kafka][statistics]") {
  CHECK(broker_up(stats(R"("a":)" + broker("learned", "UP"))));
  CHECK(broker_up(stats(R"("a":)" + broker("configured", "UP"))));
}

TEST_CASE("librdkafka's internal and logical brokers do not count", "[kafka][statistics]") {
  CHECK_FALSE(broker_up(stats(R"("a":)" + broker("internal", "UP"))));
  CHECK_FALSE(broker_up(stats(R"("a":)" + broker("logical", "UP"))));
}

TEST_CASE("a broker in any other state is not up", "[kafka][statistics]") {
  for (const char* state : {"INIT", "DOWN", "CONNECT", "AUTH", "APIVERSION_QUERY", "TRY_CONNECT"})
    CHECK_FALSE(broker_up(stats(R"("a":)" + broker("configured", state))));
}

TEST_CASE("one UP broker among others is enough, wherever it is", "[kafka][statistics]") {
  const std::string down = broker("configured", "DOWN");
  const std::string internal = broker("internal", "UP");
  const std::string up = broker("learned", "UP");
  CHECK(broker_up(stats(R"("a":)" + internal + R"(,"b":)" + down + R"(,"c":)" + up)));
  CHECK(broker_up(stats(R"("a":)" + up + R"(,"b":)" + down)));
  CHECK_FALSE(broker_up(stats(R"("a":)" + internal + R"(,"b":)" + down)));
}

TEST_CASE("whitespace after a colon is allowed", "[kafka][statistics]") {
  CHECK(broker_up(R"({"brokers":{"a":{"source": "learned", "state":  "UP"}}})"));
}

TEST_CASE("empty, truncated or foreign documents are not up", "[kafka][statistics]") {
  CHECK_FALSE(broker_up(""));
  CHECK_FALSE(broker_up("{}"));
  CHECK_FALSE(broker_up(stats("")));
  CHECK_FALSE(broker_up(R"({"brokers":{"a":{"source":"learned","state":"U)"));
  CHECK_FALSE(broker_up(R"({"brokers":{"a":{"source":"learned)"));
  CHECK_FALSE(broker_up(R"({"brokers":{"a":{"source":"learned"}}})"));
  CHECK_FALSE(broker_up(R"({"source":3,"state":"UP"})"));
}
