// Proves the batched apply path (SagaStore queues one loop turn's applies and sends them in one
// apply.lua call, at most max_batch each): many orders and partitions in one call, each apply
// answered on its own (a conflict or a duplicate in a batch changes only its own answer, two
// events of one saga in one batch apply in order), and a batch cut off by a frozen Redis
// reports nothing as applied that is not committed, while its retry commits each event once.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "loop.hpp"
#include "store/impl/scripts.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;
using namespace std::chrono_literals;

namespace {

ApplyRequest request(const std::string& order, const std::string& event, std::int64_t expected) {
  ApplyRequest r;
  r.order_id = OrderId{order};
  r.event_id = EventId{event};
  r.expected_version = expected;
  r.new_state = "{\"e\":\"" + event + "\"}";
  r.new_status = "running";
  r.old_status = expected == 0 ? "" : "running";
  r.commands.push_back({event + ":cmd", "sagaflow.commands", "inventory.reserve", "{}"});
  return r;
}

SagaStoreOptions options() {
  SagaStoreOptions o;
  o.partitions = 16;
  o.dedup_ttl_s = 3600;
  o.max_batch = 64;
  return o;
}

std::string version_of(testing::RedisServer& server, SagaStore& store, const std::string& order) {
  const OrderId id{order};
  return server.command({"HGET", Keyspace::saga_key(store.partition_of(id), id), "version"});
}

}  // namespace

TEST_CASE("a turn's applies go out in few calls, each answered on its own", "[store][batch]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto client = connected_client(loop, client_options(server));
  SagaStore store(*client, options());

  // Given 200 new sagas of many partitions, one conflicting apply and one event twice, all
  // issued in one loop turn
  std::map<std::string, Result<ApplyOutcome>> out;
  for (int i = 0; i < 200; ++i) {
    const std::string order = "ord_b" + std::to_string(i);
    store.apply(request(order, "evt_b" + std::to_string(i), 0),
                [&out, order](Result<ApplyOutcome> r) { out.emplace(order, std::move(r)); });
  }
  store.apply(request("ord_b7", "evt_conflict", 5),
              [&out](Result<ApplyOutcome> r) { out.emplace("conflict", std::move(r)); });
  store.apply(request("ord_b8", "evt_b8", 0),
              [&out](Result<ApplyOutcome> r) { out.emplace("duplicate", std::move(r)); });
  store.apply(request("ord_b9", "evt_b9_second", 1),
              [&out](Result<ApplyOutcome> r) { out.emplace("second", std::move(r)); });
  REQUIRE(loop.run_until([&] { return out.size() == 203; }, 10s));

  // Then they went out in ceil(203 / 64) = 4 script calls
  CHECK(store.stats().calls == 4);
  CHECK(store.stats().applies == 203);
  // And every new saga was applied as version 1 with its command in the outbox (ids returned)
  std::map<int, int> partitions;
  for (int i = 0; i < 200; ++i) {
    const std::string order = "ord_b" + std::to_string(i);
    const auto& r = out.at(order);
    REQUIRE(r.ok());
    CHECK(r->kind == ApplyKind::applied);
    CHECK(r->stream_ids.size() == 1);
    ++partitions[r->partition];
  }
  CHECK(partitions.size() == 16);
  // And the conflict, the duplicate and the second event of one saga got their own answers
  REQUIRE(out.at("conflict").ok());
  CHECK(out.at("conflict")->kind == ApplyKind::conflict);
  REQUIRE(out.at("duplicate").ok());
  CHECK(out.at("duplicate")->kind == ApplyKind::duplicate);
  REQUIRE(out.at("second").ok());
  CHECK(out.at("second")->kind == ApplyKind::applied);
  CHECK(out.at("second")->version == 2);
  CHECK(version_of(server, store, "ord_b7") == "1");
  CHECK(version_of(server, store, "ord_b9") == "2");

  // And a later turn's calls, written into the buffers of the sent ones, carry only their own
  // applies: 70 next steps go out in 2 calls, each applied once as version 2
  std::map<std::string, Result<ApplyOutcome>> next;
  for (int i = 100; i < 170; ++i) {
    const std::string order = "ord_b" + std::to_string(i);
    store.apply(request(order, "evt_next" + std::to_string(i), 1),
                [&next, order](Result<ApplyOutcome> r) { next.emplace(order, std::move(r)); });
  }
  REQUIRE(loop.run_until([&] { return next.size() == 70; }, 10s));
  CHECK(store.stats().calls == 6);
  CHECK(store.stats().applies == 273);
  for (const auto& [order, r] : next) {
    INFO(order);
    REQUIRE(r.ok());
    CHECK(r->kind == ApplyKind::applied);
    CHECK(r->version == 2);
    CHECK(version_of(server, store, order) == "2");
  }
  client->stop();
}

TEST_CASE(
    "a batch cut off by a frozen Redis reports nothing applied; its retry commits each "
    "event once",
    "[store][batch]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  Loop loop;
  auto opts = client_options(server);
  opts.command_timeout_ms = 300;
  auto client = connected_client(loop, opts);
  SagaStore store(*client, options());

  // When Redis freezes while 50 applies are on their way
  server.pause();
  int answered = 0;
  int applied = 0;
  for (int i = 0; i < 50; ++i) {
    store.apply(request("ord_f" + std::to_string(i), "evt_f" + std::to_string(i), 0),
                [&](Result<ApplyOutcome> r) {
                  ++answered;
                  applied += r.ok() ? 1 : 0;
                });
  }
  const bool all_answered = loop.run_until([&] { return answered == 50; }, 5s);
  server.resume();
  // Then each is answered with a failure (none reported applied)
  REQUIRE(all_answered);
  CHECK(applied == 0);

  // When each is retried (as a redelivery does) once Redis is back
  REQUIRE(loop.run_until([&] { return client->connected(); }, 10s));
  std::map<ApplyKind, int> kinds;
  int retried = 0;
  for (int i = 0; i < 50; ++i) {
    store.apply(request("ord_f" + std::to_string(i), "evt_f" + std::to_string(i), 0),
                [&](Result<ApplyOutcome> r) {
                  ++retried;
                  if (r.ok()) ++kinds[r->kind];
                });
  }
  REQUIRE(loop.run_until([&] { return retried == 50; }, 10s));
  // Then every event is committed exactly once: applied now, or found applied by the call that
  // timed out (a timed-out call may have run)
  CHECK(kinds[ApplyKind::applied] + kinds[ApplyKind::duplicate] == 50);
  CHECK(kinds[ApplyKind::conflict] == 0);
  for (int i = 0; i < 50; ++i) CHECK(version_of(server, store, "ord_f" + std::to_string(i)) == "1");
  client->stop();
}

TEST_CASE("a malformed batch is refused with a reason, and writes nothing", "[store][batch]") {
  auto& server = testing::shared_redis();
  server.command({"FLUSHALL"});
  const std::string script(impl::kApplyScript);
  using Args = std::vector<std::string>;
  // One event: its key count, its argument count, its arguments.
  auto event = [](int nkeys, const Args& args) {
    Args e{"batch", std::to_string(nkeys), std::to_string(args.size())};
    e.insert(e.end(), args.begin(), args.end());
    return e;
  };
  // An event's arguments: mode, expected version, dedup TTL, order, state, status, finished,
  // TTL, deadline, n commands (with the commands), then store, parked at, changed at, reason,
  // cap, order facts, fresh deadline, then what a start adds.
  auto args = [](const std::string& mode, const Args& n_and_commands, const Args& start = {}) {
    Args a{mode, "0", "0", "o", "{}", "running", "0", "8", "0"};
    a.insert(a.end(), n_and_commands.begin(), n_and_commands.end());
    for (const char* x : {"", "0", "1", "", "10", "", "0"}) a.emplace_back(x);
    a.insert(a.end(), start.begin(), start.end());
    return a;
  };
  std::vector<std::pair<int, Args>> calls{
      // (keys given, ARGV): a negative argument count (it would never move on), a count past
      // the end, keys missing
      {0, {"batch", "0", "-3"}},
      {0, {"batch", "0", "9"}},
      {0, {"batch", "12", "0"}},
      // events whose counts fit the call but not their own layout (an event is read in place,
      // so each would read keys or arguments past its own): 11 keys, a command counted but not
      // given, a start without its admission and event id, a "gcra" start without its bucket
      {11, event(11, args("apply", {"0"}))},
      {12, event(12, args("apply", {"1"}))},
      {12, event(12, args("start", {"0"}))},
      {12, event(12, args("start", {"0"}, {"gcra", "e1", "1", "1"}))},
  };
  // and numbers Redis would refuse only at a later write (the event half written): a TTL of
  // "8.0", an empty deadline
  Args ttl = args("apply", {"0"});
  ttl[7] = "8.0";
  calls.emplace_back(12, event(12, ttl));
  Args deadline = args("apply", {"0"});
  deadline[8] = "";
  calls.emplace_back(12, event(12, deadline));
  for (const auto& [nkeys, argv] : calls) {
    Args call{"EVAL", script, std::to_string(nkeys)};
    for (int k = 0; k < nkeys; ++k) call.push_back("sagaflow:{0}:k" + std::to_string(k));
    call.insert(call.end(), argv.begin(), argv.end());
    const std::string reply = server.command(call);
    INFO(reply);
    CHECK(reply.find("(error)") == 0);
    CHECK(reply.find("malformed batch") != std::string::npos);
  }
  CHECK(server.command({"DBSIZE"}) == "0");
  // And the same layout, whole, is applied (the cases above differ from it only where said)
  Args call{"EVAL", script, "12"};
  for (int k = 0; k < 12; ++k) call.push_back("sagaflow:{0}:k" + std::to_string(k));
  const Args whole = event(12, args("apply", {"0"}));
  call.insert(call.end(), whole.begin(), whole.end());
  CHECK(server.command(call) == "applied 1");
}
