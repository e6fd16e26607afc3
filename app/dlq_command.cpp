// sagaflow dlq list | replay, on either broker (brokers/broker.hpp: list_dead_letters,
// replay_dead_letters, shared with the console), and dlq list --index from Redis.
//
// list: up to --limit dead letters, oldest first, one JSON object per line (reason, detail,
//   attempts, original route, message id, body, then on Kafka partition and offset, and the
//   dead-letter id); nothing is consumed (RabbitMQ: taken unacked and returned in order when
//   the channel closes; Kafka: read from the replay group's position, nothing committed).
// replay: each one re-published to its original route (attempts reset) and acked or committed
//   past only after the broker confirmed it: a crash in between re-publishes at worst (the
//   event id deduplicates it downstream), never loses.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/redis_session.hpp"
#include "brokers/broker.hpp"
#include "core/envelope.hpp"
#include "store/dead_letters.hpp"

namespace sagaflow::app {
namespace {

// One JSON object per line, the same fields on both brokers.
void print_dead_letter(const brokers::DeadLetter& d) {
  std::string line = "{\"reason\":";
  append_json_string(line, d.reason);
  line += ",\"detail\":";
  append_json_string(line, d.detail);
  line += ",\"attempts\":";
  append_json_string(line, d.attempts);
  line += ",\"route\":";
  append_json_string(line, d.route);
  line += ",\"message_id\":";
  append_json_string(line, d.message_id);
  line += ",\"body\":";
  append_json_string(line, d.body);
  if (d.partition) line += fmt::format(",\"partition\":{}", *d.partition);
  if (d.offset) line += fmt::format(",\"offset\":{}", *d.offset);
  line += ",\"id\":";
  append_json_string(line, d.id);
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

// dlq list --index: the console's index, newest first, one JSON object per line (the console
// API's objects), paged through the index; the broker is not read.
int index_list_command(const Config& config, const DlqArgs& args) {
  RedisSession redis(config);
  store::DeadLetterIndex index(redis.client());
  std::int64_t listed = 0;
  std::string cursor;
  std::optional<Error> failure;
  while (listed < args.limit) {
    const auto want = static_cast<std::size_t>(std::min<std::int64_t>(args.limit - listed, 500));
    std::optional<store::DeadLetterPage> page;
    auto st = redis.run([&](std::function<void()> finish) {
      index.page(args.reason, want, cursor, [&, finish](Result<store::DeadLetterPage> r) {
        if (r) {
          page = std::move(r.value());
        } else {
          failure = r.error();
        }
        finish();
      });
    });
    if (!st) failure = st.error();
    if (failure || !page) break;
    for (const auto& entry : page->entries) {
      std::fwrite(entry.data(), 1, entry.size(), stdout);
      std::fputc('\n', stdout);
      ++listed;
    }
    if (!page->next_cursor) break;
    cursor = *page->next_cursor;
  }
  std::fflush(stdout);
  if (failure) {
    std::fprintf(stderr, "sagaflow dlq list: cannot read the dead-letter index in Redis: %s\n",
                 failure->detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%lld dead letter(s) listed from the index\n",
               static_cast<long long>(listed));
  return 0;
}

int run_dlq_list(const Config& config, const DlqArgs& args) {
  if (args.from_index) return index_list_command(config, args);
  const auto listed =
      brokers::open_broker(config)->list_dead_letters(args.limit, print_dead_letter);
  std::fflush(stdout);
  if (!listed) {
    std::fprintf(stderr, "sagaflow dlq list: %s\n", listed.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) listed\n",
               static_cast<long long>(listed.value()));
  return 0;
}

int run_dlq_replay(const Config& config, const DlqArgs& args) {
  const auto broker = brokers::open_broker(config);
  const brokers::ReplayOutcome replayed = broker->replay_dead_letters(args.limit);
  // The console's index forgets what was replayed (also when the replay stopped part-way); the
  // broker stays the truth if this fails.
  if (!replayed.ids.empty()) {
    RedisSession redis(config);
    store::DeadLetterIndex index(redis.client());
    bool removed = false;
    auto st = redis.run([&](std::function<void()> finish) {
      index.remove(replayed.ids, [&, finish](Result<std::int64_t> r) {
        removed = static_cast<bool>(r);
        finish();
      });
    });
    if (!st || !removed) {
      std::fprintf(stderr,
                   "sagaflow dlq replay: the dead-letter index in Redis was not updated; the "
                   "console may still list the replayed ones\n");
    }
  }
  if (replayed.error) {
    if (replayed.error_counts_replayed) {
      std::fprintf(stderr, "sagaflow dlq replay: %s\n", replayed.error->detail.c_str());
    } else {
      std::fprintf(stderr, "sagaflow dlq replay: %s; %lld replayed before that\n",
                   replayed.error->detail.c_str(), static_cast<long long>(replayed.replayed));
    }
    return 1;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) replayed to their original route\n",
               static_cast<long long>(replayed.replayed));
  if (replayed.passed > 0) {
    std::fprintf(stderr,
                 "%lld kept without their body (too large for the producer) passed: not "
                 "replayable; they stay in %s\n",
                 static_cast<long long>(replayed.passed),
                 std::string(broker->dead_letters_at()).c_str());
  }
  return 0;
}

}  // namespace sagaflow::app
