// Proves, on a real Redis: the console's indexes follow every apply (a saga is listed under its
// current state only, and under its failure reason, live or finished); only finished sagas are
// ever trimmed (a stuck saga stays listed whatever its age and whatever fails after it); lists
// of expired records are trimmed when read; paging over every partition walks each saga once;
// the dead-letter index counts, pages, filters, removes and stays bounded.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "loop.hpp"
#include "store/dead_letters.hpp"
#include "store/saga_index.hpp"
#include "store/saga_store.hpp"
#include "support/servers.hpp"

using namespace sagaflow;
using namespace sagaflow::store;
using namespace sagaflow::store::test;

namespace {

struct Fixture {
  testing::RedisServer& server = testing::shared_redis();
  Loop loop;
  std::unique_ptr<RedisClient> client;
  std::map<std::string, std::int64_t> versions;
  std::map<std::string, std::string> statuses;

  Fixture() {
    server.command({"FLUSHALL"});
    client = connected_client(loop, client_options(server));
  }

  // Moves `order` to `status` (new saga when unknown) at time `at`.
  void move(SagaStore& store, const std::string& order, const std::string& status, Millis at,
            const std::string& reason = {}) {
    ApplyRequest r;
    r.order_id = OrderId{order};
    r.expected_version = versions[order];
    r.new_state = fmt::format(R"({{"order_id":"{}","state":"{}"}})", order, status);
    r.new_status = status;
    r.old_status = statuses[order];
    r.finished = status == "confirmed" || status == "failed";
    r.updated_at = at;
    r.reason = reason;
    auto out = loop.await<ApplyOutcome>([&](auto cb) { store.apply(r, std::move(cb)); });
    REQUIRE(out.ok());
    REQUIRE(out->kind == ApplyKind::applied);
    versions[order] = out->version;
    statuses[order] = status;
  }

  std::vector<std::string> list(SagaIndex& index, std::vector<std::string> states,
                                const std::string& reason = {}, std::size_t limit = 1000) {
    std::vector<std::string> out;
    std::string cursor;
    for (int guard = 0; guard < 10000; ++guard) {
      auto page = loop.await<SagaIndexPage>(
          [&](auto cb) { index.page(states, reason, limit, cursor, std::move(cb)); });
      REQUIRE(page.ok());
      REQUIRE(page->sagas.size() <= limit);
      for (const auto& s : page->sagas) out.push_back(s.order_id);
      if (!page->next_cursor) break;
      cursor = *page->next_cursor;
    }
    return out;
  }
};

SagaStoreOptions options(std::int64_t cap = 65536) {
  SagaStoreOptions o;
  o.partitions = 16;
  o.dedup_ttl_s = 3600;
  o.index_cap = cap;
  return o;
}

Millis now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("a saga is listed under its current state and its reason, nowhere else",
          "[store][console]") {
  Fixture f;
  SagaStore store(*f.client, options());
  SagaIndex index(*f.client, 16, 3600);
  const Millis t = now_ms();
  f.move(store, "o1", "running", t);
  f.move(store, "o2", "running", t + 1);
  CHECK(f.list(index, {"running"}) == std::vector<std::string>{"o2", "o1"});

  f.move(store, "o1", "compensating", t + 2, "payment_failed");
  CHECK(f.list(index, {"running"}) == std::vector<std::string>{"o2"});
  CHECK(f.list(index, {"compensating"}) == std::vector<std::string>{"o1"});
  CHECK(f.list(index, {}, "payment_failed") == std::vector<std::string>{"o1"});

  f.move(store, "o1", "stuck", t + 3, "payment_failed");
  f.move(store, "o1", "failed", t + 4, "payment_failed");
  f.move(store, "o2", "confirmed", t + 5);
  CHECK(f.list(index, {"running"}).empty());
  CHECK(f.list(index, {"compensating", "stuck"}).empty());
  CHECK(f.list(index, {"failed"}) == std::vector<std::string>{"o1"});
  CHECK(f.list(index, {"confirmed", "failed"}) == std::vector<std::string>{"o2", "o1"});
  // Listed once under its reason, now as a finished saga
  CHECK(f.list(index, {}, "payment_failed") == std::vector<std::string>{"o1"});
  CHECK(f.server.command({"ZCARD", Keyspace::live_reason_index_key(
                                       store.partition_of(OrderId{std::string("o1")}),
                                       "payment_failed")}) == "0");

  // A late success's compensation that times out takes a failed saga to stuck: listed once
  f.move(store, "o1", "stuck", t + 6, "payment_failed");
  CHECK(f.list(index, {}, "payment_failed") == std::vector<std::string>{"o1"});
  CHECK(f.list(index, {"stuck"}) == std::vector<std::string>{"o1"});
  CHECK(f.list(index, {"failed"}).empty());
}

TEST_CASE("only finished sagas are trimmed: a stuck one stays listed, by state and by reason",
          "[store][console]") {
  Fixture f;
  SagaStore store(*f.client, options(/*cap=*/2));
  SagaIndex index(*f.client, 1, 3600);
  SagaStoreOptions one = options(2);
  one.partitions = 1;
  SagaStore single(*f.client, one);
  const Millis t = now_ms();
  // A saga stuck two hours ago (older than the finished records' TTL of one hour)
  f.move(single, "stuck-1", "stuck", t - 7'200'000, "payment_failed");
  // Then many failures with the same reason in the same partition
  for (int i = 0; i < 6; ++i)
    f.move(single, fmt::format("f{}", i), "failed", t + i, "payment_failed");
  CHECK(f.list(index, {"stuck"}) == std::vector<std::string>{"stuck-1"});
  const auto by_reason = f.list(index, {}, "payment_failed");
  CHECK(by_reason == std::vector<std::string>{"f5", "f4", "stuck-1"});  // 2 finished kept + live
  CHECK(f.list(index, {"failed"}) == std::vector<std::string>{"f5", "f4"});
  (void)store;
}

TEST_CASE("a list of finished sagas drops entries older than the records when read",
          "[store][console]") {
  Fixture f;
  SagaStoreOptions one = options();
  one.partitions = 1;
  SagaStore store(*f.client, one);
  SagaIndex index(*f.client, 1, 3600);
  const Millis t = now_ms();
  f.move(store, "old", "confirmed", t - 3'700'000);  // beyond the 1 h TTL
  f.move(store, "new", "confirmed", t - 1000);       // trims `old` as it adds itself
  // An entry nothing adds after (a quiet list, or one left by an older version)
  f.server.command(
      {"ZADD", Keyspace::status_index_key(0, "confirmed"), std::to_string(t - 3'650'000), "old2"});
  CHECK(f.list(index, {"confirmed"}) == std::vector<std::string>{"new"});
  CHECK(f.server.command({"ZCARD", Keyspace::status_index_key(0, "confirmed")}) == "1");
}

TEST_CASE("paging over every partition walks each saga exactly once, newest first",
          "[store][console]") {
  Fixture f;
  SagaStore store(*f.client, options());
  SagaIndex index(*f.client, 16, 3600);
  const Millis t = now_ms();
  std::vector<std::string> expected;
  for (int i = 0; i < 120; ++i) {
    const std::string order = fmt::format("p{:03}", i);
    // Ties: three sagas share each millisecond
    f.move(store, order, i % 2 ? "running" : "stuck", t + i / 3, i % 2 ? "" : "timeout:payment");
  }
  for (std::size_t limit : {1u, 7u, 50u, 500u}) {
    INFO("limit " << limit);
    const auto walked = f.list(index, {"running", "stuck"}, {}, limit);
    CHECK(walked.size() == 120);
    CHECK(std::set<std::string>(walked.begin(), walked.end()).size() == 120);
    CHECK(walked.front() == "p119");
    CHECK(walked.back() == "p000");
  }
  CHECK(f.list(index, {}, "timeout:payment", 9).size() == 60);
  auto bad = f.loop.await<SagaIndexPage>(
      [&](auto cb) { index.page({"running"}, {}, 5, "not-a-cursor", std::move(cb)); });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::usage);
}

TEST_CASE("the dead-letter index counts, pages, filters, removes and stays bounded",
          "[store][console][dlq]") {
  Fixture f;
  DeadLetterIndex index(*f.client, /*cap=*/4);
  const Millis t = now_ms();
  auto add = [&](const std::string& id, const std::string& reason, Millis at) {
    DeadLetterEntry e;
    e.id = id;
    e.reason = reason;
    e.detail = "detail of " + id;
    e.attempts = 1;
    e.route = "order.created";
    e.at = at;
    e.body_preview = "{}";
    e.where = "sagaflow.dead";
    auto st = f.loop.await<bool>([&](auto cb) {
      index.add(e, [cb](Status s) { cb(s ? Result<bool>(true) : Result<bool>(s.error())); });
    });
    REQUIRE(st.ok());
  };
  auto counts = [&] {
    auto c = f.loop.await<std::map<std::string, std::int64_t>>(
        [&](auto cb) { index.counts(std::move(cb)); });
    REQUIRE(c.ok());
    return c.value();
  };
  auto page = [&](const std::string& reason, std::size_t limit, const std::string& cursor) {
    auto p = f.loop.await<DeadLetterPage>(
        [&](auto cb) { index.page(reason, limit, cursor, std::move(cb)); });
    REQUIRE(p.ok());
    return p.value();
  };
  add("a", "unknown_saga", t);
  add("b", "malformed_json", t + 1);
  add("c", "unknown_saga", t + 2);
  CHECK(counts() ==
        std::map<std::string, std::int64_t>{{"malformed_json", 1}, {"unknown_saga", 2}});
  auto first = page("unknown_saga", 1, "");
  REQUIRE(first.entries.size() == 1);
  CHECK(first.entries[0].find(R"("id":"c")") != std::string::npos);
  REQUIRE(first.next_cursor);
  auto second = page("unknown_saga", 1, *first.next_cursor);
  REQUIRE(second.entries.size() == 1);
  CHECK(second.entries[0].find(R"("id":"a")") != std::string::npos);
  CHECK_FALSE(second.next_cursor);
  CHECK(page("", 10, "").entries.size() == 3);

  // Removing: what was there is counted, the rest ignored
  auto removed = f.loop.await<std::int64_t>([&](auto cb) {
    index.remove({"a", "zzz"}, std::move(cb));
  });
  REQUIRE(removed.ok());
  CHECK(removed.value() == 1);
  CHECK(counts() ==
        std::map<std::string, std::int64_t>{{"malformed_json", 1}, {"unknown_saga", 1}});

  // Bounded: beyond the cap the oldest leave the index, and every count follows
  for (int i = 0; i < 6; ++i)
    add(fmt::format("n{}", i), i % 2 ? "too_large" : "unknown_saga", t + 10 + i);
  const auto all = page("", 100, "");
  CHECK(all.entries.size() == 4);
  std::int64_t total = 0;
  for (const auto& [reason, n] : counts()) total += n;
  CHECK(total == 4);
  CHECK(counts().count("malformed_json") == 0);
  CHECK(page("malformed_json", 10, "").entries.empty());
}
