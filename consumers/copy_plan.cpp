#include "consumers/copy_plan.hpp"

#include <cstdint>
#include <random>
#include <variant>
#include <utility>

#include <fmt/format.h>

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
