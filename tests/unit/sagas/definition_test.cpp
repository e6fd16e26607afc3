// Saga definitions: the built-in one, SAGAFLOW_SAGA_DIR folders, and strict validation with
// errors naming the file and the field.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "sagas/definition.hpp"

using namespace sagaflow;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view kValid = R"({
  "name": "order_fulfillment",
  "compensation_retries": 3,
  "steps": [
    {"name": "inventory", "command": "inventory.reserve", "success": "inventory.reserved",
     "failure": "inventory.rejected", "compensation": "inventory.release",
     "compensation_ack": "inventory.released", "timeout_ms": 1500},
    {"name": "payment", "command": "payment.charge", "success": "payment.completed",
     "failure": "payment.failed", "compensation": "payment.refund",
     "compensation_ack": "payment.refunded", "retries": 2}
  ]
})";

// kValid with the first occurrence of `from` replaced by `to`.
std::string with(std::string_view from, std::string_view to) {
  std::string s(kValid);
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  return s;
}

std::string error_of(const std::string& json) {
  auto r = parse_definition(json, "x.json", 30000);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::invalid_config);
  return r.error().detail;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/sagas_def_test_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void write(const std::string& name, std::string_view text) const {
    std::ofstream(path / name) << text;
  }
};

}  // namespace

TEST_CASE("the built-in order fulfillment definition", "[definition]") {
  // Given the definitions built into the binary, with a 30 s default timeout
  auto defs = builtin_definitions(30000);
  REQUIRE(defs.ok());
  REQUIRE(defs->size() == 1);
  const SagaDefinition& d = defs->front();
  // Then it is CONTRACT.md section 3: inventory, payment, shipment, undone in reverse
  CHECK(d.name == "order_fulfillment");
  CHECK(d.source == "order_fulfillment.json");
  CHECK(d.compensation_retries == 5);
  REQUIRE(d.steps.size() == 3);
  CHECK(d.steps[0].name == "inventory");
  CHECK(d.steps[0].command == EventType::inventory_reserve);
  CHECK(d.steps[0].success == EventType::inventory_reserved);
  CHECK(d.steps[0].failure == EventType::inventory_rejected);
  CHECK(d.steps[0].compensation == EventType::inventory_release);
  CHECK(d.steps[0].compensation_ack == EventType::inventory_released);
  CHECK(d.steps[1].command == EventType::payment_charge);
  CHECK(d.steps[1].compensation == EventType::payment_refund);
  CHECK(d.steps[2].command == EventType::shipment_create);
  CHECK(d.steps[2].compensation == EventType::shipment_cancel);
  for (const auto& s : d.steps) {
    CHECK(s.timeout_ms == 30000);  // SAGAFLOW_STEP_TIMEOUT_MS
    CHECK(s.retries == 0);
  }
  // And replies map to their step and role
  CHECK(d.role_of(EventType::payment_failed).step == 1);
  CHECK(d.role_of(EventType::payment_failed).role == ReplyRole::failure);
  CHECK(d.role_of(EventType::shipment_cancelled).role == ReplyRole::compensation_ack);
  CHECK(d.role_of(EventType::order_created).step == -1);
  // And load_definitions("") is the built-ins
  auto same = load_definitions("", 1234);
  REQUIRE(same.ok());
  CHECK(same->front().steps[2].timeout_ms == 1234);
}

TEST_CASE("a valid definition: per-step timeout and retries, defaults elsewhere", "[definition]") {
  auto r = parse_definition(kValid, "x.json", 30000);
  REQUIRE(r.ok());
  CHECK(r->compensation_retries == 3);
  CHECK(r->steps[0].timeout_ms == 1500);
  CHECK(r->steps[0].retries == 0);
  CHECK(r->steps[1].timeout_ms == 30000);
  CHECK(r->steps[1].retries == 2);
  // compensation_retries defaults to 5
  auto d = parse_definition(with(R"("compensation_retries": 3,)", ""), "x.json", 30000);
  REQUIRE(d.ok());
  CHECK(d->compensation_retries == 5);
}

TEST_CASE("definition errors name the file and the field", "[definition]") {
  CHECK(error_of(with(R"("timeout_ms": 1500)", R"("timeout_ms": 0)")) ==
        "x.json: steps[0].timeout_ms: must be a positive integer (at most 604800000)");
  CHECK(error_of(with(R"("timeout_ms": 1500)", R"("timeout_ms": -5)")) ==
        "x.json: steps[0].timeout_ms: must be a positive integer (at most 604800000)");
  CHECK(error_of(with(R"("timeout_ms": 1500)", R"("timeout_ms": 1.5)")) ==
        "x.json: steps[0].timeout_ms: must be a positive integer (at most 604800000)");
  CHECK(error_of(with(R"("timeout_ms": 1500)", R"("timeout_ms": "1500")")) ==
        "x.json: steps[0].timeout_ms: must be a positive integer (at most 604800000)");
  CHECK(error_of(with(R"("retries": 2)", R"("retries": -1)")) ==
        "x.json: steps[1].retries: must be a non-negative integer (at most 100)");
  CHECK(error_of(with(R"("compensation_retries": 3)", R"("compensation_retries": true)")) ==
        "x.json: compensation_retries: must be a non-negative integer (at most 100)");
  // Unknown keys, at the root and in a step
  CHECK(error_of(with(R"("compensation_retries")", R"("colour": 1, "compensation_retries")")) ==
        "x.json: colour: unknown key");
  CHECK(error_of(with(R"("retries": 2)", R"("retries": 2, "timeout": 5)")) ==
        "x.json: steps[1].timeout: unknown key");
  // Event types: unknown, in the wrong role, of another participant
  CHECK(error_of(with(R"("payment.failed")", R"("payment.declined")")) ==
        "x.json: steps[1].failure: unknown event type \"payment.declined\"");
  CHECK(error_of(with(R"("command": "payment.charge")", R"("command": "payment.completed")")) ==
        "x.json: steps[1].command: \"payment.completed\" is not a command type");
  CHECK(error_of(with(R"("success": "payment.completed")", R"("success": "payment.refund")")) ==
        "x.json: steps[1].success: \"payment.refund\" is not a participant reply type");
  CHECK(error_of(with(R"("success": "payment.completed")", R"("success": "order.cancelled")")) ==
        "x.json: steps[1].success: \"order.cancelled\" is not a participant reply type");
  CHECK(error_of(with(R"("success": "payment.completed")", R"("success": "shipment.created")")) ==
        "x.json: steps[1].success: \"shipment.created\" is not an event of the participant of "
        "\"payment.charge\"");
  CHECK(error_of(with(R"("success": "payment.completed")", R"("success": "payment.failed")")) ==
        "x.json: steps[1].failure: must differ from success");
  // Names: unique, well-formed
  CHECK(error_of(with(R"("name": "payment")", R"("name": "inventory")")) ==
        "x.json: steps[1].name: \"inventory\" is already steps[0].name");
  CHECK(error_of(with(R"("name": "payment")", R"("name": "Pay Ment")")) ==
        "x.json: steps[1].name: must match [a-z][a-z0-9_]* (at most 64 bytes)");
  CHECK(error_of(with(R"("name": "order_fulfillment")", R"("name": 7)")) ==
        "x.json: name: must be a string");
  // The same participant twice: its event types would be ambiguous
  CHECK_THAT(
      error_of(
          with(R"({"name": "payment", "command": "payment.charge", "success": "payment.completed",
     "failure": "payment.failed", "compensation": "payment.refund",
     "compensation_ack": "payment.refunded", "retries": 2})",
               R"({"name": "again", "command": "inventory.reserve", "success": "inventory.reserved",
     "failure": "inventory.rejected", "compensation": "inventory.release",
     "compensation_ack": "inventory.released"})")),
      Contains("x.json: steps[1]: event type \"inventory.reserve\" is already used by steps[0]"));
  // Missing and malformed pieces
  CHECK(error_of(with(R"("compensation_ack": "payment.refunded", )", "")) ==
        "x.json: steps[1].compensation_ack: required");
  CHECK(error_of(R"({"name": "x"})") == "x.json: steps: required");
  CHECK(error_of(R"({"name": "x", "steps": []})") == "x.json: steps: must hold at least one step");
  CHECK(error_of(R"({"name": "x", "steps": {}})") == "x.json: steps: must be an array");
  CHECK(error_of(R"({"name": "x", "steps": [1]})") == "x.json: steps[0]: must be an object");
  CHECK(error_of(R"([1, 2])") == "x.json: (root): must be an object");
  CHECK_THAT(error_of(R"({"name": )"), Contains("x.json: not valid JSON"));
  // A bad default timeout is a configuration error too
  auto r = parse_definition(kValid, "x.json", 0);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().detail, Contains("SAGAFLOW_STEP_TIMEOUT_MS"));
}

TEST_CASE("SAGAFLOW_SAGA_DIR replaces the built-in definitions", "[definition]") {
  SECTION("every *.json file, sorted, other files skipped") {
    // Given a folder with two definitions and a README
    TempDir dir;
    dir.write("b.json", kValid);
    dir.write("a.json", with(R"("name": "order_fulfillment")", R"("name": "alpha")"));
    dir.write("README.md", "not a definition");
    // When it is loaded
    auto defs = load_definitions(dir.path.string(), 30000);
    // Then both are there, in file order, and the built-ins are not
    REQUIRE(defs.ok());
    REQUIRE(defs->size() == 2);
    CHECK(defs.value()[0].name == "alpha");
    CHECK(defs.value()[0].source == "a.json");
    CHECK(defs.value()[1].steps.size() == 2);
    CHECK(find_definition(defs.value(), "order_fulfillment") == &defs.value()[1]);
    CHECK(find_definition(defs.value(), "nope") == nullptr);
  }
  SECTION("a bad file stops the load with its name and field") {
    TempDir dir;
    dir.write("good.json", kValid);
    dir.write("order_fulfillment.json", with(R"("timeout_ms": 1500)", R"("timeout_ms": 0)"));
    auto defs = load_definitions_from_dir(dir.path.string(), 30000);
    REQUIRE_FALSE(defs.ok());
    CHECK(defs.error().detail ==
          "order_fulfillment.json: steps[0].timeout_ms: must be a positive integer (at most "
          "604800000)");
  }
  SECTION("two files defining one saga") {
    TempDir dir;
    dir.write("one.json", kValid);
    dir.write("two.json", kValid);
    auto defs = load_definitions_from_dir(dir.path.string(), 30000);
    REQUIRE_FALSE(defs.ok());
    CHECK(defs.error().detail ==
          "two.json: name: saga \"order_fulfillment\" is already defined by another file");
  }
  SECTION("a missing or empty folder") {
    TempDir dir;
    auto empty = load_definitions_from_dir(dir.path.string(), 30000);
    REQUIRE_FALSE(empty.ok());
    CHECK_THAT(empty.error().detail, Contains("holds no *.json definition"));
    auto missing = load_definitions_from_dir((dir.path / "nope").string(), 30000);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Errc::invalid_config);
    CHECK_THAT(missing.error().detail, Contains("not a folder"));
  }
}
