#include "consumers/copy_plan.hpp"

#include <cstdint>
#include <utility>

#include <fmt/format.h>

#include "topology/names.hpp"

namespace sagaflow {

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
}

std::string one_line(std::string_view s) {
  std::string out(s.substr(0, 1000));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

}  // namespace sagaflow
