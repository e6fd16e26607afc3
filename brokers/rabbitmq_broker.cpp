// RabbitMQ behind the Broker interface: RabbitSink / RabbitSource on the loop, the topology of
// CONTRACT.md section 6, and the blocking tools.
#include <amqp.h>

#include <fmt/format.h>

#include "brokers/impl/kinds.hpp"
#include "clients/rabbitmq/amqp_link.hpp"
#include "consumers/rabbit_source.hpp"
#include "producers/rabbit_sink.hpp"
#include "topology/names.hpp"
#include "topology/rabbitmq_topology.hpp"

namespace sagaflow::brokers::impl {
namespace {

std::string_view queue_of(Role role) {
  switch (role) {
    case Role::saga:
      return topology::kSagaQueue;
    case Role::participants:
      return topology::kParticipantsQueue;
    case Role::deliver:
      return topology::kDeliveriesQueue;
  }
  return topology::kSagaQueue;
}

class RabbitBroker final : public Broker {
 public:
  explicit RabbitBroker(const Config& config) : config_(config) {}

  std::string_view name() const noexcept override { return "RabbitMQ"; }
  std::string where() const override {
    return fmt::format("{}:{}", config_.amqp.host, config_.amqp.port);
  }

  std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const std::string& name,
                                  std::size_t window) const override {
    RabbitSinkOptions o;
    o.endpoint = config_.amqp;
    o.name = name;
    if (window > 0) o.window = window;
    return std::make_unique<RabbitSink>(loop, std::move(o));
  }

  std::unique_ptr<Source> make_source(uv_loop_s* loop, Role role, Sink& copies,
                                      const std::string& name,
                                      DeadLetterListener on_dead_lettered) const override {
    RabbitSourceOptions o;
    o.endpoint = config_.amqp;
    o.queue = std::string(queue_of(role));
    o.prefetch = config_.prefetch;
    o.retry.max_attempts = config_.max_attempts;
    o.name = name;
    o.drain_timeout_ms = kSourceDrainTimeoutMs;
    o.on_dead_lettered = std::move(on_dead_lettered);
    return std::make_unique<RabbitSource>(loop, std::move(o), copies);
  }

  std::string describe_intake(Role role) const override {
    return "queue " + std::string(queue_of(role));
  }
  bool saga_intake_has_outcomes() const noexcept override { return false; }

  Status probe() const override {
    rabbit::LinkOptions lo;
    lo.endpoint = config_.amqp;
    lo.heartbeat_s = 0;
    auto conn = rabbit::connect_blocking(lo);
    if (!conn) return std::move(conn).error();
    amqp_connection_close(conn.value(), AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn.value());
    return Status::success();
  }

  Result<std::string> apply_topology() const override {
    if (auto st = apply_rabbitmq_topology(config_.amqp); !st) return std::move(st).error();
    if (auto st = apply_rabbitmq_deliveries(config_.amqp, /*only_if_exists=*/true); !st)
      return std::move(st).error();
    return fmt::format("topology applied on {}", where());
  }

  Status prepare_deliveries() const override {
    return apply_rabbitmq_deliveries(config_.amqp, /*only_if_exists=*/false);
  }

 private:
  Config config_;
};

}  // namespace

std::unique_ptr<Broker> make_rabbitmq_broker(const Config& config) {
  return std::make_unique<RabbitBroker>(config);
}

}  // namespace sagaflow::brokers::impl
