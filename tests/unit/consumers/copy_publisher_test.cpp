// The copy publisher both sources use, against a fake Sink on a real libuv loop: a confirmed
// copy settles its original (and a dead letter reaches the listener), a copy refused while the
// sink is down waits for it and goes as soon as it is back, one a connected sink refused goes
// again after the pause, a too-large one becomes a dead letter without its body, and a copy
// whose original went back to the broker is forgotten.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../../support/uv_loop.hpp"
#include "consumers/copy_plan.hpp"
#include "consumers/copy_publisher.hpp"
#include "topology/names.hpp"

using namespace sagaflow;
using namespace std::chrono_literals;

namespace {

class FakeSink final : public Sink {
 public:
  struct Sent {
    Message message;
    PublishCallback done;
  };
  void start() override {}
  void stop(std::function<void()> on_stopped) noexcept override {
    if (on_stopped) on_stopped();
  }
  void publish(Message message, PublishCallback done) override {
    sent.push_back(Sent{std::move(message), std::move(done)});
  }
  bool can_publish() const noexcept override { return true; }
  bool connected() const noexcept override { return up; }
  std::size_t unconfirmed() const noexcept override { return sent.size(); }
  void on_state_change(std::function<void(bool)>) override {}
  void on_writable(std::function<void()>) override {}

  // Answers the oldest publish.
  void answer(Status s) {
    REQUIRE(!sent.empty());
    Sent first = std::move(sent.front());
    sent.erase(sent.begin());
    first.done(std::move(s));
  }

  bool up = true;
  std::vector<Sent> sent;
};

struct Fixture {
  testing::UvLoop loop;
  FakeSink sink;
  std::set<std::uint64_t> waiting;  // originals waiting for their copy
  std::vector<std::uint64_t> settled;
  std::vector<bool> too_large;  // given_up of each too_large report
  std::vector<DeadLetterNote> notes;
  CopyPublisher publisher;

  explicit Fixture(bool keep_refused_originals = false)
      : publisher(loop.get(), sink, options(keep_refused_originals), events()) {}

  CopyPublisherOptions options(bool keep_refused_originals) {
    CopyPublisherOptions o;
    o.keep_refused_originals = keep_refused_originals;
    o.name = "test";
    o.dead_letter_destination = "dead";
    o.dead_letter_where = "dead.queue";
    o.on_dead_lettered = [this](const DeadLetterNote& n) { notes.push_back(n); };
    o.republish_delay_ms = 200;
    return o;
  }
  CopyPublisher::Events events() {
    CopyPublisher::Events e;
    e.wanted = [this](std::uint64_t tag) { return waiting.count(tag) != 0; };
    e.settled = [this](std::uint64_t tag) {
      waiting.erase(tag);
      settled.push_back(tag);
    };
    e.too_large = [this](std::uint64_t, const Message&, bool given_up) {
      too_large.push_back(given_up);
    };
    return e;
  }

  void publish(std::uint64_t tag, Message m) {
    waiting.insert(tag);
    publisher.publish(tag, std::move(m));
  }
};

Message dead_letter_copy() {
  Message m;
  m.exchange = "dead";
  m.routing_key = "order.created";
  m.message_id = "evt_1";
  m.body = R"({"id":"evt_1"})";
  add_dead_letter_headers(m.headers, Verdict::dead_letter(Errc::invalid_event, "bad"), 1,
                          "order.created");
  return m;
}

Message retry_copy() {
  Message m;
  m.exchange = "retry";
  m.routing_key = "order.created";
  m.message_id = "evt_2";
  m.body = std::string(1000, 'x');
  add_retry_headers(m.headers, 1, "order.created");
  return m;
}

}  // namespace

TEST_CASE("a confirmed copy settles its original; a dead letter reaches the listener",
          "[consumers][copy]") {
  Fixture f;
  f.publish(1, dead_letter_copy());
  f.publish(2, retry_copy());
  REQUIRE(f.sink.sent.size() == 2);
  f.sink.answer(Status::success());
  f.sink.answer(Status::success());
  CHECK(f.settled == std::vector<std::uint64_t>{1, 2});
  REQUIRE(f.notes.size() == 1);  // only the dead letter
  CHECK(f.notes[0].message_id == "evt_1");
  CHECK(f.notes[0].where == "dead.queue");
  CHECK(f.publisher.waiting() == 0);
}

TEST_CASE("a copy refused while the sink is down goes as soon as the sink is back",
          "[consumers][copy]") {
  Fixture f;
  f.sink.up = false;
  f.publish(1, retry_copy());
  f.sink.answer(make_error(Errc::unavailable, "not connected"));
  CHECK(f.publisher.waiting() == 1);
  // While the sink is down, nothing is sent again
  f.loop.run_for(150ms);
  CHECK(f.sink.sent.empty());
  // When it is back, the copy goes at once (not after the republish pause)
  f.sink.up = true;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(f.loop.run_until([&] { return !f.sink.sent.empty(); }, 2s));
  CHECK(std::chrono::steady_clock::now() - t0 < 150ms);
  f.sink.answer(Status::success());
  CHECK(f.settled == std::vector<std::uint64_t>{1});
}

TEST_CASE("a copy a connected sink did not confirm goes again after the pause",
          "[consumers][copy]") {
  Fixture f;
  f.publish(1, retry_copy());
  const auto t0 = std::chrono::steady_clock::now();
  f.sink.answer(make_error(Errc::unavailable, "nacked"));
  REQUIRE(f.loop.run_until([&] { return !f.sink.sent.empty(); }, 2s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 190ms);
  CHECK(f.sink.sent[0].message.body == std::string(1000, 'x'));
  f.sink.answer(Status::success());
  CHECK(f.settled == std::vector<std::uint64_t>{1});
}

TEST_CASE("a copy too large for the broker becomes a dead letter without its body",
          "[consumers][copy]") {
  Fixture f;
  f.publish(1, retry_copy());
  f.sink.answer(make_error(Errc::too_large, "record too large"));
  // Then it is sent again at once, to the dead letters, without its body
  REQUIRE(f.sink.sent.size() == 1);
  const Message& again = f.sink.sent[0].message;
  CHECK(again.exchange == "dead");
  CHECK(again.body.empty());
  bool has_size = false;
  for (const auto& h : again.headers) has_size = has_size || h.key == topology::kHeaderBodySize;
  CHECK(has_size);
  CHECK(f.too_large == std::vector<bool>{false});
  CHECK(f.settled.empty());
  SECTION("confirmed: the original is settled and the dead letter noted") {
    f.sink.answer(Status::success());
    CHECK(f.settled == std::vector<std::uint64_t>{1});
    REQUIRE(f.notes.size() == 1);
    CHECK(f.notes[0].reason == "too_large");
  }
  SECTION("refused as too large again: given up, the original settled") {
    f.sink.answer(make_error(Errc::too_large, "record too large"));
    CHECK(f.too_large == std::vector<bool>{false, true});
    CHECK(f.settled == std::vector<std::uint64_t>{1});
    CHECK(f.sink.sent.empty());
  }
}

TEST_CASE("where settling deletes the original, a refused bodyless dead letter is tried again",
          "[consumers][copy]") {
  Fixture f(/*keep_refused_originals=*/true);
  f.publish(1, retry_copy());
  f.sink.answer(make_error(Errc::too_large, "record too large"));
  REQUIRE(f.sink.sent.size() == 1);
  // When even the dead letter without its body is refused
  f.sink.answer(make_error(Errc::too_large, "record too large"));
  // Then the original is not settled (a RabbitMQ ack would delete it) and it goes again later
  CHECK(f.settled.empty());
  CHECK(f.sink.sent.empty());
  REQUIRE(f.loop.run_until([&] { return !f.sink.sent.empty(); }, 2s));
  REQUIRE(f.sink.sent.size() == 1);
  CHECK(f.sink.sent[0].message.body.empty());
  f.sink.answer(Status::success());
  CHECK(f.settled == std::vector<std::uint64_t>{1});
}

TEST_CASE("a copy whose original went back to the broker is forgotten", "[consumers][copy]") {
  Fixture f;
  f.publish(1, retry_copy());
  f.sink.answer(make_error(Errc::unavailable, "nacked"));
  CHECK(f.publisher.waiting() == 1);
  f.waiting.erase(1);  // the connection was lost: the broker gives the original again
  f.loop.run_for(300ms);
  CHECK(f.sink.sent.empty());
  CHECK(f.publisher.waiting() == 0);
  f.publish(2, retry_copy());
  f.waiting.erase(2);
  f.sink.answer(Status::success());
  CHECK(f.settled.empty());
}
