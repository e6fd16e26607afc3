// CachedSagaRepository: a saga this worker committed is answered from memory; anything that
// says memory may be stale (a conflict, a duplicate, an error, a finished saga) drops it.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>

#include "app/worker/cached_repository.hpp"

using namespace sagaflow;
using namespace sagaflow::app;

namespace {

// Redis as a map: a version check like apply.lua's, answers given at once.
struct MapRepo final : SagaRepository {
  std::map<std::string, store::SagaRecord> sagas;
  int loads = 0;
  bool fail = false;
  void load(const OrderId& order, std::function<void(Result<store::SagaRecord>)> done) override {
    ++loads;
    auto it = sagas.find(order.str());
    done(it == sagas.end() ? store::SagaRecord{} : it->second);
  }
  void commit(std::shared_ptr<store::ApplyRequest> request,
              std::function<void(Result<store::ApplyOutcome>)> done) override {
    const store::ApplyRequest& c = *request;
    if (fail) return done(make_error(Errc::timeout, "no answer"));
    auto& s = sagas[c.order_id.str()];
    if (s.version != c.expected_version)
      return done(store::ApplyOutcome{store::ApplyKind::conflict, s.version, 0, {}});
    s.version += 1;
    s.state = c.new_state;
    s.status = c.new_status;
    if (!c.order.empty()) s.order = c.order;
    done(store::ApplyOutcome{store::ApplyKind::applied, s.version, 0, {}});
  }
  void outbox_done(int, std::vector<std::string>) override {}
};

const std::string kOrder = "{\"items\":[]}";  // 12 bytes

store::ApplyRequest change(const std::string& order, std::int64_t expected,
                           const std::string& state, bool finished = false) {
  store::ApplyRequest r;
  r.order_id = OrderId{order};
  r.expected_version = expected;
  r.new_state = state;
  r.new_status = "running";
  r.finished = finished;
  if (expected == 0) r.order = kOrder;  // a start writes the order facts
  return r;
}

store::SagaRecord load(SagaRepository& repo, const std::string& order) {
  store::SagaRecord out;
  repo.load(OrderId{order}, [&](Result<store::SagaRecord> r) { out = r.value(); });
  return out;
}

store::ApplyKind commit(SagaRepository& repo, const store::ApplyRequest& r) {
  store::ApplyKind kind = store::ApplyKind::duplicate;
  repo.commit(std::make_shared<store::ApplyRequest>(r), [&](Result<store::ApplyOutcome> out) {
    kind = out.ok() ? out->kind : store::ApplyKind::duplicate;
  });
  return kind;
}

}  // namespace

TEST_CASE("a saga this worker committed is read back without a load", "[cache]") {
  MapRepo redis;
  CachedSagaRepository repo(redis, 100, std::size_t{1} << 20);
  REQUIRE(commit(repo, change("o1", 0, "s1")) == store::ApplyKind::applied);
  const auto got = load(repo, "o1");
  CHECK(got.version == 1);
  CHECK(got.state == "s1");
  CHECK(got.status == "running");
  CHECK(redis.loads == 0);
  CHECK(repo.hits() == 1);
  // an order it never committed is loaded
  CHECK(load(repo, "o2").version == 0);
  CHECK(redis.loads == 1);
}

TEST_CASE("a saga changed elsewhere is re-loaded after the conflict", "[cache]") {
  MapRepo redis;
  CachedSagaRepository repo(redis, 100, std::size_t{1} << 20);
  REQUIRE(commit(repo, change("o1", 0, "s1")) == store::ApplyKind::applied);
  // Given another worker moved the saga on
  redis.sagas["o1"] = store::SagaRecord{2, "elsewhere", "compensating", "{\"items\":[]}"};
  // When this worker steps from its memory, the version check refuses
  auto stale = load(repo, "o1");
  CHECK(stale.version == 1);
  CHECK(commit(repo, change("o1", stale.version, "s2")) == store::ApplyKind::conflict);
  // Then the next load goes to Redis and sees the other worker's change
  const auto fresh = load(repo, "o1");
  CHECK(fresh.version == 2);
  CHECK(fresh.state == "elsewhere");
  CHECK(redis.loads == 1);
  CHECK(commit(repo, change("o1", 2, "s3")) == store::ApplyKind::applied);
  CHECK(load(repo, "o1").state == "s3");
  CHECK(redis.loads == 1);
}

TEST_CASE("finished sagas, failed commits and old entries are not remembered", "[cache]") {
  MapRepo redis;
  CachedSagaRepository repo(redis, 2, std::size_t{1} << 20);
  REQUIRE(commit(repo, change("o1", 0, "s1")) == store::ApplyKind::applied);
  REQUIRE(commit(repo, change("o1", 1, "done", /*finished=*/true)) == store::ApplyKind::applied);
  CHECK(repo.size() == 0);
  REQUIRE(commit(repo, change("o2", 0, "s1")) == store::ApplyKind::applied);
  redis.fail = true;
  commit(repo, change("o2", 1, "s2"));  // a timeout: it may or may not have happened
  redis.fail = false;
  CHECK(repo.size() == 0);
  // capacity 2: the oldest remembered goes first, re-remembering counts as new
  for (const char* o : {"a", "b"})
    REQUIRE(commit(repo, change(o, 0, "s")) == store::ApplyKind::applied);
  REQUIRE(commit(repo, change("a", 1, "s2")) == store::ApplyKind::applied);
  REQUIRE(commit(repo, change("c", 0, "s")) == store::ApplyKind::applied);
  CHECK(repo.size() == 2);
  const int before = redis.loads;
  CHECK(load(repo, "a").state == "s2");
  CHECK(load(repo, "c").version == 1);
  CHECK(redis.loads == before);
  load(repo, "b");
  CHECK(redis.loads == before + 1);
}

TEST_CASE("a reconnect to Redis forgets everything (writes may have been lost)", "[cache]") {
  MapRepo redis;
  std::uint64_t epoch = 7;
  CachedSagaRepository repo(redis, 100, std::size_t{1} << 20, [&] { return epoch; });
  REQUIRE(commit(repo, change("o1", 0, "s1")) == store::ApplyKind::applied);
  CHECK(load(repo, "o1").state == "s1");
  CHECK(redis.loads == 0);
  // Given Redis came back without the write (a restart that lost it), and another worker wrote
  // version 1 again with another state
  redis.sagas["o1"] = store::SagaRecord{1, "other", "compensating", ""};
  // When the client's epoch moved (it reconnected), the remembered saga is not used
  ++epoch;
  CHECK(load(repo, "o1").state == "other");
  CHECK(redis.loads == 1);
  CHECK(repo.size() == 1);  // only what it just read
}

TEST_CASE("a step keeps the remembered order facts; the bytes count stays exact", "[cache]") {
  MapRepo redis;
  CachedSagaRepository repo(redis, 100, std::size_t{1} << 20);
  REQUIRE(commit(repo, change("o1", 0, "s1")) == store::ApplyKind::applied);
  CHECK(repo.bytes() == 2 + kOrder.size());
  // A step writes no order facts: the remembered ones carry over, counted once
  for (int v = 1; v <= 3; ++v) {
    REQUIRE(commit(repo, change("o1", v, "state" + std::to_string(v))) ==
            store::ApplyKind::applied);
    CHECK(repo.bytes() == 6 + kOrder.size());
  }
  const auto got = load(repo, "o1");
  CHECK(got.version == 4);
  CHECK(got.state == "state3");
  CHECK(got.order == kOrder);
  CHECK(redis.loads == 0);
  // The applied request gives its state and order facts to the memory; its commands stay
  auto request = std::make_shared<store::ApplyRequest>(change("o2", 0, std::string(300, 's')));
  request->commands.push_back({"o2:inventory.reserve", "x", "inventory.reserve", "{}"});
  repo.commit(request, [](Result<store::ApplyOutcome>) {});
  CHECK(request->commands.size() == 1);
  CHECK(load(repo, "o2").state == std::string(300, 's'));
  CHECK(repo.bytes() == 6 + 300 + 2 * kOrder.size());
  // ...unless its buffer was reserved far beyond its size: then it is copied to its size, so
  // the byte budget counts what is held
  auto roomy = std::make_shared<store::ApplyRequest>(change("o3", 0, ""));
  roomy->new_state.reserve(4096);
  roomy->new_state = "small";
  repo.commit(roomy, [](Result<store::ApplyOutcome>) {});
  CHECK(roomy->new_state.capacity() >= 4096);  // left with the request
  CHECK(load(repo, "o3").state == "small");
  CHECK(repo.forget(OrderId{std::string("o3")}));
  // Forgetting gives the bytes back
  CHECK(repo.forget(OrderId{std::string("o1")}));
  CHECK(repo.forget(OrderId{std::string("o2")}));
  CHECK(repo.bytes() == 0);
}

TEST_CASE("remembered state is bounded in bytes too", "[cache]") {
  MapRepo redis;
  // a state and order facts over 100 bytes are not remembered
  CachedSagaRepository repo(redis, 100, 25600);
  REQUIRE(commit(repo, change("big", 0, std::string(101 - kOrder.size(), 'x'))) ==
          store::ApplyKind::applied);
  CHECK(repo.size() == 0);
  for (int i = 0; i < 300; ++i) {
    REQUIRE(
        commit(repo, change("o" + std::to_string(i), 0, std::string(100 - kOrder.size(), 'y'))) ==
        store::ApplyKind::applied);
  }
  CHECK(repo.bytes() <= 25600);
  CHECK(repo.size() == 100);  // the count bound bites first here: 100 x 100 bytes
  // With room for more sagas than bytes, the bytes bound bites: 256 of 100 bytes
  CachedSagaRepository tight(redis, 1000, 25600);
  for (int i = 0; i < 300; ++i) {
    REQUIRE(
        commit(tight, change("t" + std::to_string(i), 0, std::string(100 - kOrder.size(), 'z'))) ==
        store::ApplyKind::applied);
  }
  CHECK(tight.bytes() == 25600);
  CHECK(tight.size() == 256);
  const int before = redis.loads;
  CHECK(load(tight, "t299").version == 1);  // the newest stay
  CHECK(redis.loads == before);
  load(tight, "t0");  // the oldest went
  CHECK(redis.loads == before + 1);
}

TEST_CASE("a finished saga read from Redis is not remembered", "[cache]") {
  MapRepo redis;
  CachedSagaRepository repo(redis, 100, std::size_t{1} << 20);
  // (it expires; the order can then start a new saga whose versions count from 1 again)
  for (const char* status : {"confirmed", "failed", "cancelled_before_start"}) {
    redis.sagas["o1"] = store::SagaRecord{3, "done", status, kOrder};
    load(repo, "o1");
    CHECK(repo.size() == 0);
  }
  redis.sagas["o1"] = store::SagaRecord{3, "live", "compensating", kOrder};
  load(repo, "o1");
  CHECK(repo.size() == 1);
}
