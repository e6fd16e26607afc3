#include "consumers/copy_plan.hpp"

#include <cstdint>
#include <random>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <openssl/sha.h>

#include "topology/names.hpp"

namespace sagaflow {
namespace {

std::string new_dead_letter_id() {
  static const std::uint64_t process = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }();
  static std::uint64_t counter = 0;
  return fmt::format("{:016x}{:08x}", process, ++counter);
}

}  // namespace

Verdict effective_verdict(const RetryPolicy& policy, int attempt, Verdict verdict) {
  if (verdict.kind != Verdict::Kind::retry || !retries_exhausted(policy, attempt)) return verdict;
  return Verdict::dead_letter(Errc::retries_exhausted,
                              fmt::format("{} after {} attempts: {}", reason_code(verdict.reason),
                                          attempt, verdict.detail));
}

void add_retry_headers(std::vector<Header>& headers, int attempt, std::string_view route) {
  headers.push_back(Header{std::string(topology::kHeaderAttempts), std::int64_t{attempt} + 1});
  headers.push_back(Header{std::string(topology::kHeaderOriginalRoute), std::string(route)});
}

void add_dead_letter_headers(std::vector<Header>& headers, const Verdict& verdict, int attempt,
                             std::string_view route) {
  headers.push_back(
      Header{std::string(topology::kHeaderError), std::string(reason_code(verdict.reason))});
  headers.push_back(Header{std::string(topology::kHeaderDetail), one_line(verdict.detail)});
  headers.push_back(Header{std::string(topology::kHeaderAttempts), std::int64_t{attempt}});
  headers.push_back(Header{std::string(topology::kHeaderOriginalRoute), std::string(route)});
  headers.push_back(Header{std::string(topology::kHeaderDeadLetterId), new_dead_letter_id()});
}

std::optional<DeadLetterNote> dead_letter_note(const Message& copy, std::string_view where) {
  DeadLetterNote note;
  bool found = false;
  for (const auto& h : copy.headers) {
    const std::string* text = std::get_if<std::string>(&h.value);
    if (h.key == topology::kHeaderDeadLetterId && text != nullptr) {
      note.id = *text;
      found = true;
    } else if (h.key == topology::kHeaderError && text != nullptr) {
      note.reason = *text;
    } else if (h.key == topology::kHeaderDetail && text != nullptr) {
      note.detail = *text;
    } else if (h.key == topology::kHeaderOriginalRoute && text != nullptr) {
      note.route = *text;
    } else if (h.key == topology::kHeaderAttempts) {
      if (const auto* n = std::get_if<std::int64_t>(&h.value)) note.attempts = *n;
    }
  }
  if (!found) return std::nullopt;
  note.message_id = copy.message_id;
  note.where.assign(where);
  note.body = copy.body;
  return note;
}

Message without_body(const Message& refused, std::string_view dead_letter_destination) {
  constexpr std::size_t kMaxKey = 1024;
  Message m;
  m.exchange.assign(dead_letter_destination);
  m.routing_key = refused.routing_key;
  m.key = refused.key.substr(0, kMaxKey);
  m.message_id = refused.message_id;
  m.content_type = refused.content_type;
  std::int64_t attempts = 1;
  std::string route = refused.routing_key;
  for (const auto& h : refused.headers) {
    if (h.key == topology::kHeaderAttempts) {
      if (const auto* n = std::get_if<std::int64_t>(&h.value)) attempts = *n;
    } else if (h.key == topology::kHeaderOriginalRoute) {
      if (const auto* text = std::get_if<std::string>(&h.value)) route = *text;
    } else if (h.key == topology::kKafkaHeaderType || h.key == topology::kKafkaHeaderMessageId ||
               h.key == topology::kKafkaHeaderContentType) {
      // Only the headers that say what the message was: others may be what made it too large.
      if (const auto* text = std::get_if<std::string>(&h.value); text && text->size() <= kMaxKey)
        m.headers.push_back(h);
    }
  }
  // A retry copy carries the attempt it is for (attempt + 1); this dead letter is for the one
  // made.
  if (refused.exchange != dead_letter_destination && attempts > 1) --attempts;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(refused.body.data()), refused.body.size(), digest);
  std::string hex;
  for (unsigned char b : digest) hex += fmt::format("{:02x}", b);
  const Verdict verdict = Verdict::dead_letter(
      Errc::too_large,
      fmt::format("the copy's body of {} bytes is over the broker's record limit: kept without "
                  "it (its size and SHA-256 are in x-sagaflow-body-size and -sha256)",
                  refused.body.size()));
  add_dead_letter_headers(m.headers, verdict, static_cast<int>(attempts), route);
  m.headers.push_back(Header{std::string(topology::kHeaderBodySize),
                             static_cast<std::int64_t>(refused.body.size())});
  m.headers.push_back(Header{std::string(topology::kHeaderBodySha256), std::move(hex)});
  return m;
}

bool is_copy_header(std::string_view name) noexcept {
  return name == topology::kHeaderAttempts || name == topology::kHeaderOriginalRoute ||
         name == topology::kHeaderNotBefore || name == topology::kHeaderError ||
         name == topology::kHeaderDetail || name == topology::kHeaderDeadLetterId;
}

std::string one_line(std::string_view s) {
  std::string out(s.substr(0, 1000));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

}  // namespace sagaflow
