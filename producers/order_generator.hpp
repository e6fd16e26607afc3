#pragma once
// Synthetic order.created envelopes for `sagaflow publish --generate` and the benchmarks
// (CONTRACT.md section 2): valid, with exact money as strings ("123.45", the total equal to
// the sum of qty x price), 1-3 items, spread over K stores. Deterministic for a seed; ids are
// unique per seed ("evt_<seed>_<n>", order "ord_<seed>_<n>").
#include <cstdint>
#include <string>

namespace sagaflow {

struct GeneratedEvent {
  std::string id;
  std::string order_id;
  std::string store_id;
  std::string body;
};

class OrderGenerator {
 public:
  OrderGenerator(std::uint64_t seed, int stores);
  // The n-th event is the same for a given seed, whatever was generated before.
  GeneratedEvent make(std::uint64_t n) const;
  GeneratedEvent next() { return make(++count_); }

 private:
  std::uint64_t seed_;
  int stores_;
  std::uint64_t count_ = 0;
};

}  // namespace sagaflow
