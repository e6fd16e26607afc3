#include "clients/kafka/statistics.hpp"

#include <cstddef>

namespace sagaflow::kafka {
namespace {

// The string value of the next `key` (with its quotes and colon) at or after `from`; `end` is
// set to the index of its closing quote. Empty and end = npos when there is none.
std::string_view string_after(std::string_view json, std::string_view key, std::size_t from,
                              std::size_t& end) noexcept {
  end = std::string_view::npos;
  const std::size_t k = json.find(key, from);
  if (k == std::string_view::npos) return {};
  std::size_t p = k + key.size();
  while (p < json.size() && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n')) ++p;
  if (p >= json.size() || json[p] != '"') {
    end = p;  // not a string: skip it
    return {};
  }
  const std::size_t q = json.find('"', p + 1);
  if (q == std::string_view::npos) return {};
  end = q;
  return json.substr(p + 1, q - p - 1);
}

}  // namespace

bool broker_up(std::string_view json) noexcept {
  std::size_t pos = 0;
  while (true) {
    std::size_t end = 0;
    const std::string_view source = string_after(json, "\"source\":", pos, end);
    if (end == std::string_view::npos) return false;
    const std::string_view state = string_after(json, "\"state\":", end, end);
    if (end == std::string_view::npos) return false;
    if ((source == "learned" || source == "configured") && state == "UP") return true;
    pos = end + 1;
  }
}

}  // namespace sagaflow::kafka
