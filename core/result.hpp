#pragma once
// Error policy (STYLE.md 7): on the data path a failure is a value. Errc says what went wrong
// and, through is_retryable(), whether trying again can help. Exceptions are for start-up and
// configuration only; nothing throws across an event-loop callback.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sagaflow {

enum class Errc : std::uint8_t {
  // Content failures: the message itself can never succeed. Dead-lettered at once.
  malformed_json,
  invalid_event,
  unknown_type,
  unknown_saga,
  too_large,
  retries_exhausted,
  // Content failures that may succeed on a later delivery (retried with backoff).
  rejected,
  // Transient failures of a dependency: never dead-letter, pause and try again.
  unavailable,
  timeout,
  conflict,
  // Start-up, usage and programming errors.
  invalid_config,
  usage,
  internal,
};

// The reason code written to x-sagaflow-error and to metric labels.
std::string_view reason_code(Errc code) noexcept;

// True when the same operation may succeed later without any change to the input.
constexpr bool is_transient(Errc code) noexcept {
  return code == Errc::unavailable || code == Errc::timeout || code == Errc::conflict;
}

// True when a message failing this way must go to the dead-letter queue without a retry.
constexpr bool is_permanent_content_error(Errc code) noexcept {
  return code == Errc::malformed_json || code == Errc::invalid_event ||
         code == Errc::unknown_type || code == Errc::unknown_saga || code == Errc::too_large ||
         code == Errc::retries_exhausted;
}

struct Error {
  Errc code = Errc::internal;
  std::string detail;  // one human-readable line
};

// A value or an Error. Small on purpose: [[nodiscard]], explicit checks, no exceptions.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Success or an Error, for operations with no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  static Status success() { return {}; }

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error make_error(Errc code, std::string detail) {
  return Error{code, std::move(detail)};
}

}  // namespace sagaflow
