#pragma once
// Strong types for identifiers (STYLE.md 6): an OrderId cannot be passed where an EventId is
// expected. Each wraps the exact bytes received; validation (1..128 bytes) happens at parse.
#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace sagaflow {

template <class Tag>
class NamedId {
 public:
  NamedId() = default;
  explicit NamedId(std::string value) : value_(std::move(value)) {}
  explicit NamedId(std::string_view value) : value_(value) {}

  const std::string& str() const noexcept { return value_; }
  std::string_view view() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }
  void assign(std::string_view v) { value_.assign(v.data(), v.size()); }  // reuses capacity
  void clear() noexcept { value_.clear(); }

  friend bool operator==(const NamedId&, const NamedId&) = default;
  friend auto operator<=>(const NamedId&, const NamedId&) = default;

 private:
  std::string value_;
};

struct EventIdTag {};
struct OrderIdTag {};
struct StoreIdTag {};
struct SagaIdTag {};

using EventId = NamedId<EventIdTag>;
using OrderId = NamedId<OrderIdTag>;
using StoreId = NamedId<StoreIdTag>;
using SagaId = NamedId<SagaIdTag>;

inline constexpr std::size_t kMaxIdBytes = 128;

}  // namespace sagaflow

template <class Tag>
struct std::hash<sagaflow::NamedId<Tag>> {
  std::size_t operator()(const sagaflow::NamedId<Tag>& id) const noexcept {
    return std::hash<std::string_view>{}(id.view());
  }
};
