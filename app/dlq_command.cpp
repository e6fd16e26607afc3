// sagaflow dlq list | replay, on RabbitMQ (here) or Kafka (SAGAFLOW_BROKER=kafka, the broker
// work in app/impl/kafka_dlq.cpp).
//
// RabbitMQ:
// list: takes up to --limit messages from sagaflow.dead without acknowledging them, prints one
//   JSON object per line (reason, detail, attempts, original route, message id, body), then
//   closes the channel so the broker puts every message back, in order. Nothing is consumed.
// replay (app/impl/dlq_replay.cpp, shared with the console): for each message, publishes the body
// unchanged to sagaflow.events with its original
//   routing key (persistent, with publisher confirms, attempts reset), and only after the
//   broker confirmed does it ack the dead letter. A crash in between re-publishes at worst
//   (the event id deduplicates it downstream), never loses.
//
// Kafka: the topic sagaflow.dead, from the committed position of the consumer group
// sagaflow-dlq-replay (the beginning if none) up to the high watermarks at the start.
// list: prints the same JSON lines (plus partition and offset); commits nothing.
// replay: re-publishes value, key and headers (minus x-sagaflow-*, so attempts start again
//   at 1) to the original topic with the idempotent producer and acks=all, waits for each
//   delivery report, and only then commits the offsets after the replayed ones for the group.
//   A crash between the publish and the commit re-publishes at worst (same ids, deduplicated
//   downstream), never loses.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/amqp_dead_letter.hpp"
#include "app/impl/dlq_replay.hpp"
#include "app/impl/kafka_dlq.hpp"
#include "app/impl/redis_session.hpp"
#include "clients/rabbitmq/blocking_amqp.hpp"
#include "core/envelope.hpp"
#include "store/dead_letters.hpp"
#include "topology/names.hpp"

namespace sagaflow::app {
namespace {

// NUL-terminated: the names are string literals.
constexpr const char* kDeadQueue = topology::kDeadQueue.data();

// One JSON object per line: the same fields on both brokers; `extra` (already JSON, starting
// with a comma) is appended before the closing brace.
void print_dead_letter_line(std::string_view reason, std::string_view detail,
                            std::string_view attempts, std::string_view route,
                            std::string_view message_id, std::string_view body,
                            std::string_view extra = {}) {
  std::string line = "{\"reason\":";
  append_json_string(line, reason);
  line += ",\"detail\":";
  append_json_string(line, detail);
  line += ",\"attempts\":";
  append_json_string(line, attempts);
  line += ",\"route\":";
  append_json_string(line, route);
  line += ",\"message_id\":";
  append_json_string(line, message_id);
  line += ",\"body\":";
  append_json_string(line, body);
  line += extra;
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void print_dead_letter(const AmqpDeadLetter& d) {
  std::string extra = ",\"id\":";
  append_json_string(extra, d.id);
  print_dead_letter_line(d.reason, d.detail, d.attempts, d.route, d.message_id, d.body, extra);
}

KafkaDlqOptions kafka_options(const Config& config) {
  KafkaDlqOptions o;
  o.brokers = config.kafka_brokers;
  return o;
}

int kafka_dlq_list_command(const Config& config, const DlqArgs& args) {
  const auto listed =
      kafka_dlq_list(kafka_options(config), args.limit, [](const KafkaDeadLetter& d) {
        std::string extra =
            fmt::format(",\"partition\":{},\"offset\":{},\"id\":", d.partition, d.offset);
        append_json_string(extra, d.header(topology::kHeaderDeadLetterId));
        print_dead_letter_line(d.header(topology::kHeaderError), d.header(topology::kHeaderDetail),
                               d.header(topology::kHeaderAttempts),
                               d.header(topology::kHeaderOriginalRoute),
                               d.header(topology::kKafkaHeaderMessageId), d.value, extra);
      });
  std::fflush(stdout);
  if (!listed) {
    std::fprintf(stderr, "sagaflow dlq list: %s\n", listed.error().detail.c_str());
    return 1;
  }
  std::fprintf(stderr, "%lld dead-lettered message(s) listed\n",
               static_cast<long long>(listed.value()));
  return 0;
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
  if (config.broker == BrokerKind::kafka) return kafka_dlq_list_command(config, args);
  auto session = rabbit::BlockingAmqp::open(config.amqp);
  if (!session) {
    std::fprintf(stderr, "sagaflow dlq list: %s\n", session.error().detail.c_str());
    return 1;
  }
  std::int64_t n = 0;
  while (n < args.limit) {
    auto d = get_dead_letter(*session.value());
    if (!d) {
      std::fprintf(stderr, "sagaflow dlq list: %s\n", d.error().detail.c_str());
      return 1;
    }
    if (!d.value()) break;
    print_dead_letter(*d.value());
    ++n;
  }
  std::fflush(stdout);
  // Closing without acks returns every message to the queue in order.
  std::fprintf(stderr, "%lld dead-lettered message(s) listed\n", static_cast<long long>(n));
  return 0;
}

int run_dlq_replay(const Config& config, const DlqArgs& args) {
  const ReplayOutcome replayed = replay_dead_letters(config, args.limit);
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
    // Kafka's detail already says how many were replayed and committed.
    if (config.broker == BrokerKind::kafka) {
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
                 static_cast<long long>(replayed.passed), topology::kDeadTopic.data());
  }
  return 0;
}

}  // namespace sagaflow::app
