#pragma once
// Structured logs: one JSON object per line on stderr, {"ts","level","msg", context...}
// (CONTRACT.md section 8). Level from SAGAFLOW_LOG_LEVEL. Cheap when a level is disabled.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace sagaflow::log {

enum class Level : std::uint8_t { debug, info, warn, error, off };

std::optional<Level> parse_level(std::string_view name) noexcept;
void set_level(Level level) noexcept;
Level level() noexcept;
inline bool enabled(Level l) noexcept {
  return l >= level();
}

// One context field. Strings are JSON-escaped; integers are written as numbers.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), str(v) {}
  Field(std::string_view k, const char* v) : key(k), str(v) {}
  Field(std::string_view k, std::int64_t v) : key(k), num(v), is_num(true) {}
  Field(std::string_view k, int v) : key(k), num(v), is_num(true) {}
  Field(std::string_view k, std::uint64_t v)
      : key(k), num(static_cast<std::int64_t>(v)), is_num(true) {}
  std::string_view key;
  std::string_view str;
  std::int64_t num = 0;
  bool is_num = false;
};

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug)) write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::info)) write(Level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::warn)) write(Level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::error)) write(Level::error, m, f);
}

}  // namespace sagaflow::log
