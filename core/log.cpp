#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

#include "core/envelope.hpp"

namespace sagaflow::log {
namespace {
std::atomic<Level> g_level{Level::info};

constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error", "off"};

void append_timestamp(std::string& out) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  char frac[8];
  const int m = std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  out.append(frac, static_cast<std::size_t>(m));
}
}  // namespace

std::optional<Level> parse_level(std::string_view name) noexcept {
  for (std::size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (name == kLevelNames[i]) return static_cast<Level>(i);
  }
  if (name == "warning") return Level::warn;
  return std::nullopt;
}

void set_level(Level level) noexcept {
  g_level.store(level, std::memory_order_relaxed);
}
Level level() noexcept {
  return g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  thread_local std::string line;
  line.clear();
  line.append("{\"ts\":\"");
  append_timestamp(line);
  line.append("\",\"level\":\"");
  line.append(kLevelNames[static_cast<std::size_t>(level)]);
  line.append("\",\"msg\":");
  append_json_string(line, msg);
  for (const Field& f : fields) {
    line.push_back(',');
    append_json_string(line, f.key);
    line.push_back(':');
    if (f.is_num) {
      line.append(std::to_string(f.num));
    } else {
      append_json_string(line, f.str);
    }
  }
  line.append("}\n");
  // One write(2) per line so that lines from several processes do not interleave.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace sagaflow::log
