#include "store/dead_letters.hpp"

#include <utility>

#include <fmt/format.h>

#include "core/envelope.hpp"
#include "store/impl/scripts.hpp"
#include "store/impl/sum_hashes.hpp"
#include "store/impl/zset_page.hpp"

namespace sagaflow::store {
namespace {

constexpr std::string_view kEntries = "sagaflow:{dlq}:entries";
constexpr std::string_view kAll = "sagaflow:{dlq}:all";
constexpr std::string_view kCounts = "sagaflow:{dlq}:counts";
constexpr std::string_view kReasonOf = "sagaflow:{dlq}:reason_of";
constexpr std::string_view kReasonPrefix = "sagaflow:{dlq}:reason:";

std::vector<std::string> script_keys() {
  return {std::string(kEntries), std::string(kAll), std::string(kCounts), std::string(kReasonOf)};
}

std::string reason_key(std::string_view reason) {
  return std::string(kReasonPrefix) + std::string(reason);
}

Error reply_error(std::string_view what, const Reply& r) {
  return make_error(Errc::internal,
                    fmt::format("{}: {}", what, r.is_error() ? r.str : "bad reply"));
}

}  // namespace

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    }
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = byte(i + k);
      ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

std::string DeadLetterEntry::to_json() const {
  // Every field comes from the message: whatever its bytes, the JSON stays valid UTF-8.
  std::string out = "{\"id\":";
  append_json_string(out, valid_utf8(id));
  out += ",\"reason\":";
  append_json_string(out, valid_utf8(reason));
  out += ",\"detail\":";
  append_json_string(out, valid_utf8(detail));
  out += fmt::format(",\"attempts\":{},\"route\":", attempts);
  append_json_string(out, valid_utf8(route));
  out += fmt::format(",\"at\":{},\"body_preview\":", at);
  append_json_string(out, valid_utf8(body_preview));
  out += ",\"message_id\":";
  append_json_string(out, valid_utf8(message_id));
  out += ",\"where\":";
  append_json_string(out, valid_utf8(where));
  out += '}';
  return out;
}

std::string body_preview(std::string_view body, std::size_t max) {
  if (body.size() <= max) return std::string(body);
  std::size_t n = max;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut sequence.
  while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  return std::string(body.substr(0, n));
}

DeadLetterIndex::DeadLetterIndex(RedisClient& redis, std::int64_t cap, Millis timeout_ms)
    : redis_(redis), cap_(cap < 1 ? 1 : cap), timeout_ms_(timeout_ms) {
  script_ = redis_.register_script("dead_letters.lua", std::string(impl::kDeadLettersScript));
}

void DeadLetterIndex::add(const DeadLetterEntry& e, std::function<void(Status)> done) {
  redis_.eval(
      script_, script_keys(),
      {"add", std::string(kReasonPrefix), e.id, std::to_string(e.at), e.reason, e.to_json(),
       std::to_string(cap_)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r) return done(std::move(r).error());
        if (r->is_error()) return done(reply_error("dead_letters.lua", r.value()));
        done(Status{});
      },
      timeout_ms_);
}

void DeadLetterIndex::page(const std::string& reason, std::size_t limit, const std::string& cursor,
                           std::function<void(Result<DeadLetterPage>)> done) {
  std::optional<impl::Cursor> after;
  if (!cursor.empty()) {
    after = impl::parse_cursor(cursor);
    if (!after) return done(make_error(Errc::usage, "cursor is not one this API gave out"));
  }
  std::vector<std::string> keys{reason.empty() ? std::string(kAll) : reason_key(reason)};
  impl::read_page(redis_, std::move(keys), limit, std::move(after), timeout_ms_,
                  [this, done = std::move(done)](Result<impl::Page> r) mutable {
                    if (!r) return done(std::move(r).error());
                    std::vector<std::string> ids;
                    for (auto& item : r->items) ids.push_back(std::move(item.member));
                    auto next = std::move(r->next_cursor);
                    get(std::move(ids),
                        [next = std::move(next), done = std::move(done)](
                            Result<std::vector<std::optional<std::string>>> g) mutable {
                          if (!g) return done(std::move(g).error());
                          DeadLetterPage page;
                          page.next_cursor = std::move(next);
                          for (auto& e : g.value()) {
                            if (e)
                              page.entries.push_back(std::move(*e));  // removed meanwhile: skipped
                          }
                          done(std::move(page));
                        });
                  });
}

void DeadLetterIndex::get(
    std::vector<std::string> ids,
    std::function<void(Result<std::vector<std::optional<std::string>>>)> done) {
  if (ids.empty()) return done(std::vector<std::optional<std::string>>{});
  std::vector<std::string> argv{"HMGET", std::string(kEntries)};
  for (auto& id : ids) argv.push_back(std::move(id));
  redis_.command(
      std::move(argv),
      [done = std::move(done)](Result<Reply> r) {
        if (!r) return done(std::move(r).error());
        if (!r->is_array()) return done(reply_error("HMGET", r.value()));
        std::vector<std::optional<std::string>> out;
        for (auto& e : r->elements) {
          if (e.is_nil()) {
            out.emplace_back();
          } else {
            out.emplace_back(std::move(e.str));
          }
        }
        done(std::move(out));
      },
      timeout_ms_);
}

void DeadLetterIndex::ids_with_reason(const std::string& reason, std::size_t max,
                                      std::function<void(Result<std::vector<std::string>>)> done) {
  redis_.command(
      {"ZRANGE", reason_key(reason), "0", std::to_string(max == 0 ? 0 : max - 1)},
      [done = std::move(done)](Result<Reply> r) {
        if (!r) return done(std::move(r).error());
        if (r->is_error()) return done(reply_error("ZRANGE", r.value()));
        std::vector<std::string> out;
        for (auto& e : r->elements) out.push_back(std::move(e.str));
        done(std::move(out));
      },
      timeout_ms_);
}

void DeadLetterIndex::remove(std::vector<std::string> ids,
                             std::function<void(Result<std::int64_t>)> done) {
  if (ids.empty()) return done(std::int64_t{0});
  std::vector<std::string> args{"remove", std::string(kReasonPrefix)};
  for (auto& id : ids) args.push_back(std::move(id));
  redis_.eval(
      script_, script_keys(), std::move(args),
      [done = std::move(done)](Result<Reply> r) {
        if (!r) return done(std::move(r).error());
        if (r->is_error()) return done(reply_error("dead_letters.lua", r.value()));
        done(r->integer);
      },
      timeout_ms_);
}

void DeadLetterIndex::counts(
    std::function<void(Result<std::map<std::string, std::int64_t>>)> done) {
  impl::sum_hashes(redis_, {std::string(kCounts)}, timeout_ms_, std::move(done));
}

}  // namespace sagaflow::store
