// OffsetWindow: which offsets of a partition may be stored for commit, given which records are
// settled; the tags of the records of each assignment.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <vector>

#include "consumers/kafka/offset_window.hpp"

using namespace sagaflow::kafka_source;

namespace {

struct Record {};  // the window never touches its records
using Window = OffsetWindow<Record>;

std::uint64_t poll(Window& w, std::int64_t offset) {
  Window::Slot s;
  s.offset = offset;
  s.state = SlotState::handed;
  return w.push(s);
}

void settle(Window& w, std::uint64_t seq) {
  Window::Slot* s = w.find(seq);
  REQUIRE(s != nullptr);
  w.settle(*s);
}

}  // namespace

TEST_CASE("nothing to store before a record is settled", "[kafka][offsets]") {
  Window w;
  CHECK_FALSE(w.take_store());
  poll(w, 10);
  poll(w, 11);
  CHECK_FALSE(w.take_store());
  CHECK(w.size() == 2);
}

TEST_CASE("settling in order stores the offset after the last settled", "[kafka][offsets]") {
  Window w;
  const auto a = poll(w, 10);
  const auto b = poll(w, 11);
  settle(w, a);
  CHECK(w.take_store() == std::optional<std::int64_t>(11));
  CHECK_FALSE(w.take_store());  // taken once
  settle(w, b);
  CHECK(w.take_store() == std::optional<std::int64_t>(12));
  CHECK(w.size() == 0);
}

TEST_CASE("a record settled behind an unsettled one is not stored", "[kafka][offsets]") {
  // Given three records, when the second and third settle first
  Window w;
  const auto a = poll(w, 5);
  const auto b = poll(w, 6);
  const auto c = poll(w, 7);
  settle(w, c);
  settle(w, b);
  // then nothing may be committed: the first is still unsettled
  CHECK_FALSE(w.take_store());
  CHECK(w.size() == 3);
  // when the first settles, the offset moves past all three at once
  settle(w, a);
  CHECK(w.take_store() == std::optional<std::int64_t>(8));
  CHECK(w.size() == 0);
}

TEST_CASE("gaps in the offsets (compaction, transactions) are stepped over", "[kafka][offsets]") {
  Window w;
  const auto a = poll(w, 100);
  const auto b = poll(w, 250);
  settle(w, a);
  CHECK(w.take_store() == std::optional<std::int64_t>(101));
  settle(w, b);
  CHECK(w.take_store() == std::optional<std::int64_t>(251));
}

TEST_CASE("a record polled again is not fresh", "[kafka][offsets]") {
  Window w;
  CHECK(w.fresh(0));
  poll(w, 3);
  CHECK_FALSE(w.fresh(2));
  CHECK_FALSE(w.fresh(3));
  CHECK(w.fresh(4));
  // still after the record left the window
  settle(w, 0);
  CHECK_FALSE(w.fresh(3));
}

TEST_CASE("a settled record is no longer found; sequence numbers are not reused",
          "[kafka][offsets]") {
  Window w;
  const auto a = poll(w, 1);
  const auto b = poll(w, 2);
  CHECK(b == a + 1);
  settle(w, a);
  CHECK(w.find(a) == nullptr);
  CHECK(w.find(b) != nullptr);
  CHECK(w.find(b + 1) == nullptr);
  const auto c = poll(w, 3);
  CHECK(c == b + 1);
  CHECK(w.find(c)->offset == 3);
}

TEST_CASE("for_each visits the tracked records oldest first with their sequence numbers",
          "[kafka][offsets]") {
  Window w;
  const auto a = poll(w, 1);
  poll(w, 2);
  poll(w, 3);
  settle(w, a);
  std::vector<std::uint64_t> seqs;
  std::vector<std::int64_t> offsets;
  w.for_each([&](std::uint64_t seq, Window::Slot& s) {
    seqs.push_back(seq);
    offsets.push_back(s.offset);
  });
  CHECK(seqs == std::vector<std::uint64_t>{1, 2});
  CHECK(offsets == std::vector<std::int64_t>{2, 3});
}

TEST_CASE("tags carry the track id and the sequence number", "[kafka][offsets]") {
  const std::uint64_t tag = make_tag(7, 123456);
  CHECK(track_of_tag(tag) == 7);
  CHECK(seq_of_tag(tag) == 123456);
  CHECK(make_tag(1, 0) != make_tag(2, 0));
}

TEST_CASE("track ids start at 1, never 0, and wrap after 2^24 - 1", "[kafka][offsets]") {
  TrackIds ids;
  CHECK(ids.next() == 1);
  CHECK(ids.next() == 2);
  for (std::uint32_t i = 3; i < kTrackIdMask; ++i) ids.next();
  CHECK(ids.next() == kTrackIdMask);
  CHECK(ids.next() == 1);
}
