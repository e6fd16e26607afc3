// Kafka behind the Broker interface: KafkaSink / KafkaSource (consumer groups) on the loop,
// the topics of CONTRACT.md section 6, and the blocking tools.
#include <fmt/format.h>

#include <algorithm>

#include "brokers/impl/kinds.hpp"
#include "brokers/kafka/dead_letter_topic.hpp"
#include "consumers/kafka_source.hpp"
#include "producers/kafka_probe.hpp"
#include "producers/kafka_sink.hpp"
#include "topology/kafka_topology.hpp"
#include "topology/names.hpp"

namespace sagaflow::brokers::impl {
namespace {

std::string_view group_of(Role role) {
  switch (role) {
    case Role::saga:
      return topology::kSagaGroup;
    case Role::participants:
      return topology::kParticipantsGroup;
    case Role::deliver:
      return topology::kDeliverGroup;
  }
  return topology::kSagaGroup;
}
std::string_view topic_of(Role role) {
  return role == Role::participants ? topology::kCommandsTopic : topology::kEventsTopic;
}

// A request the broker has not answered by then is failed and sent again (librdkafka's default
// is 60 s): after a broker restart, a request caught in the switch delays its partition by at
// most this much.
constexpr const char* kSocketTimeoutMs = "10000";

DeadLetter shown(const KafkaDeadLetter& d) {
  DeadLetter out;
  out.id = d.header(topology::kHeaderDeadLetterId);
  out.reason = d.header(topology::kHeaderError);
  out.detail = d.header(topology::kHeaderDetail);
  out.attempts = d.header(topology::kHeaderAttempts);
  out.route = d.header(topology::kHeaderOriginalRoute);
  out.message_id = d.header(topology::kKafkaHeaderMessageId);
  out.body = d.value;
  out.partition = d.partition;
  out.offset = d.offset;
  return out;
}

class KafkaBroker final : public Broker {
 public:
  explicit KafkaBroker(const Config& config) : config_(config) {}

  std::string_view name() const noexcept override { return "Kafka"; }
  std::string where() const override { return config_.kafka_brokers; }

  std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const std::string& name, std::size_t window,
                                  SinkUse use) const override {
    KafkaSinkOptions o;
    o.brokers = config_.kafka_brokers;
    o.name = name;
    if (window > 0) o.window = window;
    if (use == SinkUse::publish) return std::make_unique<KafkaSink>(loop, std::move(o));
    // A record the broker has not confirmed by then fails (the outbox re-sends it): bounded
    // delivery time after an outage, instead of waiting behind librdkafka's retries.
    o.message_timeout_ms = 5000;
    o.properties.emplace_back("socket.timeout.ms", kSocketTimeoutMs);
    // Room for a dead-letter copy of the largest accepted message plus its headers, and never
    // below librdkafka's own default (1,000,000): a message over the intake limit is
    // dead-lettered with its body whenever the broker takes it (a copy over this limit too
    // goes without its body: consumers/copy_plan.hpp, without_body).
    o.properties.emplace_back(
        "message.max.bytes",
        std::to_string(std::max<std::size_t>(config_.max_message_bytes + 65536, 1000000)));
    return std::make_unique<KafkaSink>(loop, std::move(o));
  }

  std::unique_ptr<Source> make_source(uv_loop_s* loop, Role role, Sink& copies,
                                      const std::string& name,
                                      DeadLetterListener on_dead_lettered) const override {
    KafkaSourceOptions o;
    o.brokers = config_.kafka_brokers;
    o.group = std::string(group_of(role));
    o.topics = {std::string(topic_of(role))};
    o.name = name;
    o.max_in_flight = static_cast<std::size_t>(config_.prefetch);
    o.retry.max_attempts = config_.max_attempts;
    o.drain_timeout_ms = kSourceDrainTimeoutMs;
    // A fetch that finds nothing waits at most this long before the next one: the latency of
    // every saga hop when the topic is quiet. (A real broker answers a waiting fetch as soon as
    // data arrives; librdkafka's mock cluster only at the end of the wait.)
    o.properties.emplace_back("fetch.wait.max.ms", "10");
    o.properties.emplace_back("socket.timeout.ms", kSocketTimeoutMs);
    o.on_dead_lettered = std::move(on_dead_lettered);
    return std::make_unique<KafkaSource>(loop, std::move(o), copies);
  }

  std::string describe_intake(Role role) const override {
    return "group " + std::string(group_of(role));
  }
  bool saga_intake_has_outcomes() const noexcept override { return true; }

  Status probe() const override { return probe_kafka(config_.kafka_brokers); }

  Result<std::string> apply_topology() const override {
    KafkaTopologyOptions o;
    o.brokers = config_.kafka_brokers;
    o.partitions = config_.kafka_partitions;
    o.replication = config_.kafka_replication;
    KafkaTopologyReport report;
    if (auto st = apply_kafka_topology(o, &report); !st) return std::move(st).error();
    if (report.checked_only) {
      return fmt::format(
          "topology checked on {}: {} topics exist (this broker cannot create topics, e.g. "
          "librdkafka's mock cluster)",
          where(), report.existing.size());
    }
    return fmt::format("topology applied on {}: {} topics ({} created, {} already there)", where(),
                       report.created.size() + report.existing.size(), report.created.size(),
                       report.existing.size());
  }

  Status prepare_deliveries() const override { return Status::success(); }

  std::string_view dead_letters_at() const noexcept override { return topology::kDeadTopic; }

  Result<std::int64_t> dead_letter_depth() const override { return kafka_dlq_depth(dlq()); }

  Result<std::int64_t> list_dead_letters(
      std::int64_t limit, const std::function<void(const DeadLetter&)>& visit) const override {
    return kafka_dlq_list(dlq(), limit, [&](const KafkaDeadLetter& d) { visit(shown(d)); });
  }

  // kafka_dlq_replay with the same selection; its error's detail says how many were replayed
  // and committed.
  ReplayOutcome replay_dead_letters(std::int64_t limit,
                                    const DeadLetterSelect& select) const override {
    ReplayOutcome out;
    out.error_counts_replayed = true;
    KafkaDlqSelect kafka_select;
    if (select) {
      kafka_select = [&](const KafkaDeadLetter& d) {
        return select(selection_view(d.header(topology::kHeaderDeadLetterId),
                                     d.header(topology::kHeaderError)));
      };
    }
    auto n = kafka_dlq_replay(
        dlq(), limit, kafka_select,
        [&](const KafkaDeadLetter& d) {
          ++out.replayed;
          std::string id = d.header(topology::kHeaderDeadLetterId);
          if (!id.empty()) out.ids.push_back(std::move(id));
        },
        [&](const KafkaDeadLetter&) { ++out.passed; });
    if (!n) {
      out.error = std::move(n).error();
    } else {
      out.complete = !select || n.value() < limit;
    }
    return out;
  }

  bool replayed_dead_letters_stay() const noexcept override { return true; }

 private:
  KafkaDlqOptions dlq() const {
    KafkaDlqOptions o;
    o.brokers = config_.kafka_brokers;
    return o;
  }

  Config config_;
};

}  // namespace

std::unique_ptr<Broker> make_kafka_broker(const Config& config) {
  return std::make_unique<KafkaBroker>(config);
}

}  // namespace sagaflow::brokers::impl
