#pragma once
// What settling a delivery sends, the same on both brokers (CONTRACT.md sections 4 and 6): the
// verdict after the attempt limit (a retry past max_attempts becomes a dead letter,
// retries_exhausted), and the x-sagaflow-* headers a retry or dead-letter copy carries. Each
// source adds only its broker's part (RabbitMQ: the delay tier and expiration; Kafka: the retry
// topic and a not-before header).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consumers/retry_policy.hpp"
#include "consumers/source.hpp"
#include "producers/sink.hpp"

namespace sagaflow {

// The verdict that applies to a delivery at `attempt` (1-based).
Verdict effective_verdict(const RetryPolicy& policy, int attempt, Verdict verdict);

// A retry copy: attempts = attempt + 1, the original route kept.
void add_retry_headers(std::vector<Header>& headers, int attempt, std::string_view route);
// A dead-letter copy: the reason code, one line of detail, the attempts made, the route, and
// a new dead-letter id (unique across processes: random per process, then a counter).
void add_dead_letter_headers(std::vector<Header>& headers, const Verdict& verdict, int attempt,
                             std::string_view route);

// What a confirmed dead-letter copy tells the dead-letter index; nullopt for another copy.
std::optional<DeadLetterNote> dead_letter_note(const Message& copy, std::string_view where);

// A retry or dead-letter copy the broker refused as larger than its record limit becomes a
// dead letter without its body (the contract keeps every dead letter): reason too_large, a
// detail saying so, the attempts made and its route, a new dead-letter id, and the body's size
// and SHA-256 (kHeaderBodySize, kHeaderBodySha256). Of the other headers only those naming the
// message (type, message id, content type) are kept, and the key is cut to 1 KiB, so that the
// copy is small whatever made the original too large. `dead_letter_destination` is where dead
// letters go (the dead-letter topic or exchange).
Message without_body(const Message& refused, std::string_view dead_letter_destination);

// A header is written anew on every copy and never carried over from the delivery.
bool is_copy_header(std::string_view name) noexcept;

// Newlines and other control characters become spaces; at most 1,000 bytes.
std::string one_line(std::string_view s);

}  // namespace sagaflow
