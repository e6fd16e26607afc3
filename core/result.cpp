#include "core/result.hpp"

namespace sagaflow {

std::string_view reason_code(Errc code) noexcept {
  switch (code) {
    case Errc::malformed_json:
      return "malformed_json";
    case Errc::invalid_event:
      return "invalid_event";
    case Errc::unknown_type:
      return "unknown_type";
    case Errc::unknown_saga:
      return "unknown_saga";
    case Errc::too_large:
      return "too_large";
    case Errc::retries_exhausted:
      return "retries_exhausted";
    case Errc::rejected:
      return "rejected";
    case Errc::unavailable:
      return "unavailable";
    case Errc::timeout:
      return "timeout";
    case Errc::conflict:
      return "conflict";
    case Errc::invalid_config:
      return "invalid_config";
    case Errc::usage:
      return "usage";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace sagaflow
