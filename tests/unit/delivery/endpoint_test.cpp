// Webhook endpoints as data: event patterns, matching by type and store, the stored JSON, URL
// parsing, signing secrets over a rotation, and the format of new ids and secrets.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "delivery/endpoint.hpp"
#include "http/webhook_signature.hpp"

using namespace sagaflow;
using namespace sagaflow::delivery;

namespace {
constexpr Millis kHour = 3600 * 1000;
constexpr Millis kDay = 24 * kHour;
constexpr Millis kT0 = 1'700'000'000'000;

Endpoint endpoint_for(std::vector<std::string> events, std::string store_id = "") {
  Endpoint e;
  e.id = "ep_0123456789abcdef";
  e.url = "https://hooks.example.com/in";
  e.events = std::move(events);
  e.store_id = std::move(store_id);
  return e;
}
}  // namespace

TEST_CASE("endpoint states as text", "[endpoint]") {
  for (EndpointState s :
       {EndpointState::enabled, EndpointState::disabled, EndpointState::disabled_gone}) {
    CHECK(endpoint_state_from(to_string(s)) == s);
  }
  CHECK(to_string(EndpointState::disabled_gone) == "disabled:gone");
  CHECK_FALSE(endpoint_state_from("gone").has_value());
  CHECK_FALSE(endpoint_state_from("Enabled").has_value());
}

TEST_CASE("patterns: exact types, prefixes and * are accepted", "[endpoint][pattern]") {
  for (const char* p : {"order.created", "order.*", "*", "payment.refund.*", "x"}) {
    INFO(p);
    CHECK(check_pattern(p).ok());
  }
}

TEST_CASE("patterns: other wildcards, empty ones and spaces are refused", "[endpoint][pattern]") {
  for (const char* p : {"order*", "*.created", "a.*.b", "**", ".*", "*order.*", "order.**",
                        "order.*x", "", "order created", "order.created\t", "order\ncreated"}) {
    INFO(p);
    const Status st = check_pattern(p);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::usage);
    CHECK_FALSE(st.error().detail.empty());
    CHECK(st.error().detail.find('\n') == std::string::npos);
  }
}

TEST_CASE("a pattern list is split, trimmed, checked and needs one pattern",
          "[endpoint][pattern]") {
  auto ok = parse_patterns(" order.created , payment.* ");
  REQUIRE(ok.ok());
  CHECK(*ok == std::vector<std::string>{"order.created", "payment.*"});
  // A repeated pattern is kept once
  auto twice = parse_patterns("order.*,order.*");
  REQUIRE(twice.ok());
  CHECK(*twice == std::vector<std::string>{"order.*"});
  for (const char* bad : {"", "  ", "order.created,,payment.*", "order.created,", "order*"}) {
    INFO(bad);
    auto r = parse_patterns(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
  }
}

TEST_CASE("pattern matching: exact, prefix and everything", "[endpoint][pattern]") {
  CHECK(pattern_matches("order.created", "order.created"));
  CHECK_FALSE(pattern_matches("order.created", "order.cancelled"));
  CHECK_FALSE(pattern_matches("order.created", "order.created.v2"));
  CHECK(pattern_matches("order.*", "order.created"));
  CHECK(pattern_matches("order.*", "order.failed"));
  CHECK_FALSE(pattern_matches("order.*", "order"));
  CHECK_FALSE(pattern_matches("order.*", "orders.created"));
  CHECK_FALSE(pattern_matches("order.*", "payment.completed"));
  CHECK(pattern_matches("*", "shipment.cancel"));
  // A refused wildcard matches nothing but its own text
  CHECK_FALSE(pattern_matches("order*", "order.created"));
  CHECK_FALSE(pattern_matches("*.created", "order.created"));
}

TEST_CASE("an endpoint wants the events its patterns and store filter select", "[endpoint]") {
  // Given an endpoint without a store filter
  const Endpoint any_store = endpoint_for({"order.*", "payment.completed"});
  CHECK(endpoint_wants(any_store, "order.created", "store-1"));
  CHECK(endpoint_wants(any_store, "payment.completed", "store-2"));
  CHECK(endpoint_wants(any_store, "order.confirmed", ""));  // an event without store_id
  CHECK_FALSE(endpoint_wants(any_store, "payment.failed", "store-1"));

  // Given an endpoint filtered on store-1
  const Endpoint one_store = endpoint_for({"*"}, "store-1");
  CHECK(endpoint_wants(one_store, "shipment.created", "store-1"));
  CHECK_FALSE(endpoint_wants(one_store, "shipment.created", "store-2"));
  CHECK_FALSE(endpoint_wants(one_store, "shipment.created", "store-10"));
  // An event without store_id matches only endpoints without a store filter
  CHECK_FALSE(endpoint_wants(one_store, "shipment.created", ""));
}

TEST_CASE("only an enabled endpoint wants events", "[endpoint]") {
  Endpoint e = endpoint_for({"*"});
  REQUIRE(endpoint_wants(e, "order.created", ""));
  e.state = EndpointState::disabled;
  CHECK_FALSE(endpoint_wants(e, "order.created", ""));
  e.state = EndpointState::disabled_gone;
  CHECK_FALSE(endpoint_wants(e, "order.created", ""));
}

TEST_CASE("an endpoint survives the JSON round trip, odd characters included", "[endpoint]") {
  // Given an endpoint with quotes, backslashes, control characters and UTF-8 in its strings
  Endpoint e;
  e.id = "ep_\"quoted\"\\back";
  e.url = "https://h\u00e9.example.com/a?b=\"c\"&d=\\e\u0001\u001f#\xf0\x9f\x93\xa6";
  e.events = {"order.*", "payment.completed", "we\"ird"};
  e.store_id = "store \"1\"\n\t/";
  e.plan = "pro";
  e.state = EndpointState::disabled_gone;
  e.secrets = {{"whsec_old+/==", kT0 - kDay}, {"plain \u2603 secret", kT0}};
  e.created_ms = kT0 - 2 * kDay;
  // When encoded and decoded
  const std::string json = to_json(e);
  auto back = endpoint_from_json(json);
  // Then every field is back as it was
  REQUIRE(back.ok());
  CHECK(back->id == e.id);
  CHECK(back->url == e.url);
  CHECK(back->events == e.events);
  CHECK(back->store_id == e.store_id);
  CHECK(back->plan == e.plan);
  CHECK(back->state == e.state);
  REQUIRE(back->secrets.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(back->secrets[i].value == e.secrets[i].value);
    CHECK(back->secrets[i].created_ms == e.secrets[i].created_ms);
  }
  CHECK(back->created_ms == e.created_ms);
  // And the encoding is one line
  CHECK(json.find('\n') == std::string::npos);
}

TEST_CASE("the stored JSON has the contract's field names", "[endpoint]") {
  Endpoint e = endpoint_for({"order.*"}, "s1");
  e.secrets = {{"whsec_AAAA", 5}};
  e.created_ms = 7;
  CHECK(to_json(e) ==
        R"({"id":"ep_0123456789abcdef","url":"https://hooks.example.com/in","events":["order.*"],)"
        R"("store_id":"s1","plan":"","state":"enabled",)"
        R"("secrets":[{"value":"whsec_AAAA","created_ms":5}],"created_ms":7})");
}

TEST_CASE("stored JSON: optional fields default, bad JSON is refused", "[endpoint]") {
  // Given a minimal object with null store and plan, and an unknown field
  auto min = endpoint_from_json(
      R"({"id":"ep_1","url":"http://x","events":["*"],"store_id":null,"plan":null,"new":1})");
  REQUIRE(min.ok());
  CHECK(min->store_id.empty());
  CHECK(min->plan.empty());
  CHECK(min->state == EndpointState::enabled);
  CHECK(min->secrets.empty());

  auto not_json = endpoint_from_json("{\"id\":");
  REQUIRE_FALSE(not_json.ok());
  CHECK(not_json.error().code == Errc::malformed_json);
  for (const char* bad : {
           R"([])",
           R"({"url":"http://x","events":["*"]})",            // no id
           R"({"id":"ep_1","events":["*"]})",                 // no url
           R"({"id":"ep_1","url":"http://x"})",               // no events
           R"({"id":"ep_1","url":"http://x","events":"*"})",  // events not an array
           R"({"id":"ep_1","url":"http://x","events":[1]})",  // not a string
           R"({"id":"ep_1","url":"http://x","events":["*"],"state":"paused"})",
           R"({"id":"ep_1","url":"http://x","events":["*"],"secrets":[{"created_ms":1}]})",
           R"({"id":"ep_1","url":"http://x","events":["*"],"created_ms":"1"})",
       }) {
    INFO(bad);
    auto r = endpoint_from_json(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_config);
  }
}

TEST_CASE("URLs: http and https with names, IPv4 and [IPv6] hosts and ports", "[endpoint][url]") {
  struct Good {
    const char* url;
    const char* scheme;
    const char* host;
    int port;
  };
  for (const Good& g : {
           Good{"https://hooks.example.com/in", "https", "hooks.example.com", 0},
           Good{"http://example.com", "http", "example.com", 0},
           Good{"HTTPS://Example.com:8443/a?b=c#d", "https", "Example.com", 8443},
           Good{"http://10.0.0.1:1/x", "http", "10.0.0.1", 1},
           Good{"http://[::1]:65535/", "http", "::1", 65535},
           Good{"https://[2606:4700::1111]/hook", "https", "2606:4700::1111", 0},
           Good{"https://example.com?x=1", "https", "example.com", 0},
           Good{"https://b\xc3\xbc"
                "cher.example/",
                "https",
                "b\xc3\xbc"
                "cher.example",
                0},
       }) {
    INFO(g.url);
    auto u = parse_url(g.url);
    REQUIRE(u.ok());
    CHECK(u->scheme == g.scheme);
    CHECK(u->host == g.host);
    CHECK(u->port == g.port);
  }
}

TEST_CASE("URLs: other schemes, userinfo, bad ports, bad hosts and spaces are refused",
          "[endpoint][url]") {
  for (const char* url : {
           "ftp://example.com/",
           "example.com/hook",
           "https:/example.com",
           "httpx://example.com",
           "",
           "https://user:pass@example.com/",
           "https://user@example.com/",
           "https://example.com:0/",
           "https://example.com:65536/",
           "https://example.com:/",
           "https://example.com:-1/",
           "https://example.com:+80/",
           "https://example.com:8o/",
           "https://example.com:1:2/",
           "https://:80/",
           "https:///path",
           "https://exa mple.com/",
           "https://example.com/a b",
           "https://example.com/\t",
           "https://[::1/",
           "https://[::1]x/",
           "https://[not-v6]/",
           "https://[]/",
           "https://::1/",
           "https://exam\\ple.com/",
           "https://example.com\\@127.0.0.1/",
           "https://ex%61mple.com/",
           "https://bad\xff.example/",
       }) {
    INFO(url);
    auto u = parse_url(url);
    REQUIRE_FALSE(u.ok());
    CHECK(u.error().code == Errc::usage);
    CHECK(u.error().detail.find('\n') == std::string::npos);
  }
  // The contract's example detail, and no password echoed back
  CHECK(parse_url("ftp://x").error().detail == "the URL must be http:// or https://: ftp://x");
  CHECK(parse_url("https://me:hunter2@example.com/").error().detail.find("hunter2") ==
        std::string::npos);
}

TEST_CASE("signing secrets over a rotation: both for 24 h, then only the newest", "[endpoint]") {
  // Given an endpoint with one secret
  Endpoint e = endpoint_for({"*"});
  e.secrets = {{"whsec_old", kT0 - 10 * kDay}};
  CHECK(signing_secrets(e, kT0) == std::vector<std::string>{"whsec_old"});
  // When a new secret is added at kT0
  e.secrets.push_back({"whsec_new", kT0});
  // Then both sign until 24 h later
  const std::vector<std::string> both{"whsec_old", "whsec_new"};
  CHECK(signing_secrets(e, kT0) == both);
  CHECK(signing_secrets(e, kT0 + kDay - 1) == both);
  // Then only the newest
  CHECK(signing_secrets(e, kT0 + kDay) == std::vector<std::string>{"whsec_new"});
  CHECK(signing_secrets(e, kT0 + 30 * kDay) == std::vector<std::string>{"whsec_new"});
  // A second rotation 12 h later keeps the middle one 24 h after the newest, the oldest 24 h
  // after the middle
  e.secrets.push_back({"whsec_newer", kT0 + 12 * kHour});
  CHECK(signing_secrets(e, kT0 + 13 * kHour) ==
        std::vector<std::string>{"whsec_old", "whsec_new", "whsec_newer"});
  CHECK(signing_secrets(e, kT0 + 25 * kHour) ==
        std::vector<std::string>{"whsec_new", "whsec_newer"});
  CHECK(signing_secrets(e, kT0 + 36 * kHour) == std::vector<std::string>{"whsec_newer"});
  // A custom overlap
  CHECK(signing_secrets(e, kT0 + 13 * kHour, kHour) == std::vector<std::string>{"whsec_newer"});
  // No secrets: nothing signs
  CHECK(signing_secrets(endpoint_for({"*"}), kT0).empty());
}

TEST_CASE("new endpoint ids are ep_ and 16 base-36 characters, all different", "[endpoint]") {
  std::set<std::string> seen;
  std::set<char> chars;
  for (int i = 0; i < 500; ++i) {
    const std::string id = new_endpoint_id();
    INFO(id);
    REQUIRE(id.size() == 19);
    REQUIRE(id.rfind("ep_", 0) == 0);
    for (char c : id.substr(3)) {
      REQUIRE(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')));
      chars.insert(c);
    }
    seen.insert(id);
  }
  CHECK(seen.size() == 500);
  // 8,000 random characters use the whole alphabet
  CHECK(chars.size() == 36);
}

TEST_CASE("new secrets are whsec_ and base64 of 24 random bytes", "[endpoint]") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string secret = new_secret();
    INFO(secret);
    REQUIRE(secret.rfind("whsec_", 0) == 0);
    CHECK(secret.size() == 6 + 32);
    // The signer reads it as a 24-byte key
    const auto key = http::secret_key(secret);
    REQUIRE(key.has_value());
    CHECK(key->size() == 24);
    seen.insert(secret);
  }
  CHECK(seen.size() == 100);
  // And a delivery signed with it verifies at an ingress holding it
  const std::string secret = new_secret();
  const std::vector<std::string> secrets{secret};
  const std::string body = R"({"id":"evt_1"})";
  CHECK(http::verify_signature(http::sign(secret, 1'700'000'000, body), body, secrets,
                               1'700'000'000) == http::SignatureCheck::ok);
}
