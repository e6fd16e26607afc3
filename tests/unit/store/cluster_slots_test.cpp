// Redis Cluster routing facts (store/impl/cluster_slots): slots, routing keys, the slot map of
// a CLUSTER SLOTS reply, redirections. The integration test checks key_slot against a real
// cluster's CLUSTER KEYSLOT too.
#include <catch2/catch.hpp>

#include "store/deliveries.hpp"
#include "store/impl/cluster_slots.hpp"
#include "store/keyspace.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::impl;

namespace {
Reply integer(std::int64_t v) {
  Reply r;
  r.type = Reply::Type::integer;
  r.integer = v;
  return r;
}
Reply text(std::string s) {
  Reply r;
  r.type = Reply::Type::string;
  r.str = std::move(s);
  return r;
}
Reply array(std::vector<Reply> items) {
  Reply r;
  r.type = Reply::Type::array;
  r.elements = std::move(items);
  return r;
}
Reply range(int from, int to, std::string host, int port) {
  return array({integer(from), integer(to),
                array({text(std::move(host)), integer(port), text("id")}),
                array({text("127.0.0.1"), integer(9999), text("replica")})});
}
}  // namespace

TEST_CASE("key_slot is CRC16 mod 16384 of the hash tag, or of the key", "[cluster]") {
  // Values from the cluster specification and CLUSTER KEYSLOT's documentation
  CHECK(key_slot("123456789") == 0x31C3);
  CHECK(key_slot("somekey") == 11058);
  CHECK(key_slot("foo{hash_tag}") == 2515);
  CHECK(key_slot("foo{hash_tag}") == key_slot("hash_tag"));
  // Only the first {...} counts; an empty {} or an unclosed { means the whole key (values
  // from a real cluster's CLUSTER KEYSLOT)
  CHECK(key_slot("a{x}b{y}") == key_slot("x"));
  CHECK(key_slot("x") == 16287);
  CHECK(key_slot("a{}b{y}") == 12289);
  CHECK(key_slot("y") == 12222);
  CHECK(key_slot("a{x") == 1895);
  // Every key of one saga step shares its partition's slot
  const OrderId order(std::string("ord_1"));
  const int p = Keyspace(16).partition_of(order);
  const int slot = key_slot(Keyspace::saga_key(p, order));
  CHECK(key_slot(Keyspace::dedup_key(p, EventId(std::string("evt_1")))) == slot);
  CHECK(key_slot(Keyspace::outbox_key(p)) == slot);
  CHECK(key_slot(Keyspace::parked_key(p, StoreId(std::string("s1")))) == slot);
  CHECK(key_slot(Keyspace::status_index_key(p, "running")) == slot);
  CHECK(key_slot(Keyspace::live_reason_index_key(p, "x")) == slot);
  CHECK(key_slot(Keyspace::deadlines_key(p)) == slot);
  CHECK(key_slot(Keyspace::stats_key(p)) == slot);
  CHECK(key_slot(Keyspace::parked_stores_key(p)) == slot);
  CHECK(key_slot(Keyspace::parked_leases_key(p)) == slot);
  // The outgoing deliveries' scripts (record, claim, update) touch one partition's keys
  CHECK(key_slot(Deliveries::event_key(p, "evt_1")) == slot);
  CHECK(key_slot(Deliveries::seen_key(p, "evt_1")) == slot);
  CHECK(key_slot(Deliveries::due_key(p)) == slot);
  CHECK(key_slot(Deliveries::log_key(p)) == slot);
  // A store's rate-limit bucket is its own slot, the same for every worker
  CHECK(key_slot(Keyspace::rate_key(StoreId(std::string("s1")))) == key_slot("s1"));
}

TEST_CASE("routing_key finds the key of a command, or none", "[cluster]") {
  using V = std::vector<std::string>;
  CHECK(routing_key(V{"HGETALL", "k"}) == std::optional<std::string_view>("k"));
  CHECK(routing_key(V{"EVALSHA", "sha", "2", "k1", "k2", "a"}) ==
        std::optional<std::string_view>("k1"));
  CHECK_FALSE(routing_key(V{"EVALSHA", "sha", "0", "a"}));
  CHECK_FALSE(routing_key(V{"EVALSHA", "sha", "x", "a"}));
  CHECK(routing_key(V{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"}) ==
        std::optional<std::string_view>("s"));
  CHECK_FALSE(routing_key(V{"PING"}));
  CHECK_FALSE(routing_key(V{"TIME"}));
  CHECK_FALSE(routing_key(V{"wait", "1", "100"}));
  CHECK_FALSE(routing_key(V{"CLUSTER", "SLOTS"}));
  CHECK_FALSE(routing_key(V{"SCRIPT", "LOAD", "return 1"}));
}

TEST_CASE("parse_cluster_slots reads the primaries' ranges and refuses other shapes", "[cluster]") {
  auto r =
      parse_cluster_slots(array({range(0, 5460, "127.0.0.1", 7000), range(5461, 10922, "", 7001),
                                 range(10923, 16383, "?", 7002)}),
                          "10.0.0.9");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].first == 0);
  CHECK((*r)[0].last == 5460);
  CHECK((*r)[0].host == "127.0.0.1");
  CHECK((*r)[0].port == 7000);
  CHECK((*r)[1].host == "10.0.0.9");  // "" and "?" are the node that answered
  CHECK((*r)[2].host == "10.0.0.9");
  CHECK(parse_cluster_slots(array({}), "h")->empty());
  CHECK_FALSE(parse_cluster_slots(text("x"), "h").ok());
  CHECK_FALSE(parse_cluster_slots(array({array({integer(0), integer(1)})}), "h").ok());
  CHECK_FALSE(parse_cluster_slots(array({range(10, 5, "h", 1)}), "h").ok());
  CHECK_FALSE(parse_cluster_slots(array({range(0, 16384, "h", 1)}), "h").ok());
  CHECK_FALSE(parse_cluster_slots(array({range(0, 1, "h", 0)}), "h").ok());
}

TEST_CASE("parse_redirect reads MOVED and ASK, nothing else", "[cluster]") {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(moved);
  CHECK_FALSE(moved->ask);
  CHECK(moved->slot == 3999);
  CHECK(moved->host == "127.0.0.1");
  CHECK(moved->port == 6381);
  auto ask = parse_redirect("ASK 1 ::1:7000");
  REQUIRE(ask);
  CHECK(ask->ask);
  CHECK(ask->host == "::1");
  CHECK(parse_redirect("MOVED 5 :7000")->host.empty());  // the node that answered
  CHECK_FALSE(parse_redirect("ERR wrong"));
  CHECK_FALSE(parse_redirect("MOVED x h:1"));
  CHECK_FALSE(parse_redirect("MOVED 16384 h:1"));
  CHECK_FALSE(parse_redirect("MOVED 1 h"));
  CHECK_FALSE(parse_redirect("MOVED 1 h:0"));
  CHECK_FALSE(parse_redirect("MOVEDX 1 h:1"));
}
