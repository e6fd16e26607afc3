#pragma once
// A general JSON validator on simdjson On-Demand. On-Demand does not validate what it skips,
// so the envelope parser visits every value once: what it reads through read_scalar(), what
// it does not know through walk(). Both check JSON's number grammar and a depth limit.
#include <simdjson.h>

#include <cstdint>
#include <string_view>

#include "core/result.hpp"

namespace sagaflow::core_impl {

namespace od = simdjson::ondemand;

inline constexpr int kMaxDepth = 64;

// A simdjson error as a malformed_json Error with one line of detail.
Error malformed(simdjson::error_code e);

// A value the parser visited: what kind it was and its text (unescaped for strings, the raw
// token for numbers). Views point into the parser's buffers, valid until the next parse.
struct Seen {
  enum class Kind : std::uint8_t { absent, string, number, other } kind = Kind::absent;
  std::string_view text;
  bool duplicate = false;
};

// JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? . Checked on the raw
// token, so that integers too large for 64 bits are still valid JSON (simdjson 3.0 refuses
// them in get_number()).
bool valid_json_number(std::string_view s);

// Walks a value of no interest, validating it (and everything in it) with a depth limit.
simdjson::error_code walk(od::value v, int depth);

// Reads a string or number value into seen; other kinds are walked (validated) and marked.
simdjson::error_code read_scalar(od::value v, Seen& seen, int depth);

// The end of the JSON value that starts at p (an array here), for its exact bytes. The
// document was validated by the walk, so bracket matching with string awareness suffices.
const char* value_end(const char* p, const char* end);

}  // namespace sagaflow::core_impl
