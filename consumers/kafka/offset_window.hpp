#pragma once
// Which offsets of one assigned partition may be committed (pure: no librdkafka, no libuv).
//
// The records polled from a partition are tracked in offset order from the oldest unsettled
// one. A record is settled once its verdict is done (acked, or its retry / dead-letter copy
// confirmed); the settled records at the front leave the window and the offset to store (the
// next one to consume) moves to the last of them + 1. So the stored, and later committed,
// offset never passes an unsettled record: events may finish out of order, and a record
// settled behind an unsettled one is delivered again after a crash (at-least-once).
//
// Tags: the handler sees tag = track id << 40 | sequence number of the record in its
// track (one track per partition assignment, ids never 0 and reused only after 2^24 - 1
// assignments), so a tag of a revoked assignment never finds a record of a later one.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>

namespace sagaflow::kafka_source {

constexpr int kSeqBits = 40;
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
constexpr std::uint32_t kTrackIdMask = (std::uint32_t{1} << 24) - 1;

constexpr std::uint64_t make_tag(std::uint32_t track, std::uint64_t seq) noexcept {
  return (std::uint64_t{track} << kSeqBits) | (seq & kSeqMask);
}
constexpr std::uint32_t track_of_tag(std::uint64_t tag) noexcept {
  return static_cast<std::uint32_t>(tag >> kSeqBits);
}
constexpr std::uint64_t seq_of_tag(std::uint64_t tag) noexcept {
  return tag & kSeqMask;
}

// Track ids 1, 2, ... 2^24 - 1, 1, ...
class TrackIds {
 public:
  std::uint32_t next() noexcept {
    const std::uint32_t id = next_;
    next_ = (next_ + 1) & kTrackIdMask;
    if (next_ == 0) next_ = 1;
    return id;
  }

 private:
  std::uint32_t next_ = 1;
};

// waiting: a retry held until its not-before; held: polled (or due), not yet handed;
// handed: with the handler; publishing: its copy is being published; settled: done.
enum class SlotState : std::uint8_t { waiting, held, handed, publishing, settled };

// One partition's window. Record is the polled record (rd_kafka_message_t in the source),
// owned by the caller: the window never touches it.
template <class Record>
class OffsetWindow {
 public:
  struct Slot {
    Record* msg = nullptr;  // alive until settled (the Delivery's views point in)
    std::int64_t offset = 0;
    std::string_view route;       // into msg (or the track's topic)
    std::string_view message_id;  // into msg
    int attempt = 1;
    SlotState state = SlotState::held;
  };

  // True for an offset above every one polled so far (a record polled again is not).
  bool fresh(std::int64_t offset) const noexcept { return offset > last_offset_; }

  // Appends a fresh record; returns its sequence number.
  std::uint64_t push(const Slot& s) {
    last_offset_ = s.offset;
    slots_.push_back(s);
    return next_seq_++;
  }

  // The record with sequence number `seq`, if still tracked.
  Slot* find(std::uint64_t seq) noexcept {
    if (seq < first_seq_ || seq >= next_seq_) return nullptr;
    return &slots_[seq - first_seq_];
  }

  // Marks `s` (a slot of this window) settled; the settled front leaves the window.
  void settle(Slot& s) {
    s.state = SlotState::settled;
    bool moved = false;
    std::int64_t last = -1;
    while (!slots_.empty() && slots_.front().state == SlotState::settled) {
      last = slots_.front().offset;
      slots_.pop_front();
      first_seq_++;
      moved = true;
    }
    if (moved) {
      store_ = last + 1;
      dirty_ = true;
    }
  }

  // The offset to store (the next to consume) if it moved since the last call.
  std::optional<std::int64_t> take_store() noexcept {
    if (!dirty_) return std::nullopt;
    dirty_ = false;
    return store_;
  }

  // Records tracked: the oldest unsettled one and every one polled after it.
  std::size_t size() const noexcept { return slots_.size(); }

  // Calls f(seq, slot) for every tracked record, oldest first.
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < slots_.size(); ++i) f(first_seq_ + i, slots_[i]);
  }

 private:
  std::deque<Slot> slots_;
  std::uint64_t first_seq_ = 0;  // sequence number of slots_.front()
  std::uint64_t next_seq_ = 0;
  std::int64_t last_offset_ = -1;  // highest offset polled
  std::int64_t store_ = -1;        // offset to store, when dirty_
  bool dirty_ = false;
};

}  // namespace sagaflow::kafka_source
