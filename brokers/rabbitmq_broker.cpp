// RabbitMQ behind the Broker interface: RabbitSink / RabbitSource on the loop, the topology of
// CONTRACT.md section 6, and the blocking tools.
#include <amqp.h>

#include <fmt/format.h>

#include "brokers/impl/kinds.hpp"
#include "brokers/rabbitmq/dead_letter_queue.hpp"
#include "clients/rabbitmq/amqp_link.hpp"
#include "clients/rabbitmq/blocking_amqp.hpp"
#include "consumers/rabbit_source.hpp"
#include "producers/rabbit_sink.hpp"
#include "topology/names.hpp"
#include "topology/rabbitmq_topology.hpp"

namespace sagaflow::brokers::impl {
namespace {

DeadLetter shown(const AmqpDeadLetter& d) {
  DeadLetter out;
  out.id = d.id;
  out.reason = d.reason;
  out.detail = d.detail;
  out.attempts = d.attempts;
  out.route = d.route;
  out.message_id = d.message_id;
  out.body = d.body;
  return out;
}

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

  std::unique_ptr<Sink> make_sink(uv_loop_s* loop, const std::string& name, std::size_t window,
                                  SinkUse /*use*/) const override {
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

  std::string_view dead_letters_at() const noexcept override { return topology::kDeadQueue; }

  Result<std::int64_t> dead_letter_depth() const override {
    auto session = rabbit::BlockingAmqp::open(config_.amqp);
    if (!session) return std::move(session).error();
    auto depth = session.value()->queue_depth(topology::kDeadQueue);
    if (!depth) return std::move(depth).error();
    return static_cast<std::int64_t>(depth.value());
  }

  // basic.get without acks; closing the channel returns every one to the queue, in order.
  Result<std::int64_t> list_dead_letters(
      std::int64_t limit, const std::function<void(const DeadLetter&)>& visit) const override {
    auto session = rabbit::BlockingAmqp::open(config_.amqp);
    if (!session) return std::move(session).error();
    std::int64_t n = 0;
    while (n < limit) {
      auto d = get_dead_letter(*session.value());
      if (!d) return std::move(d).error();
      if (!d.value()) break;
      visit(shown(*d.value()));
      ++n;
    }
    return n;
  }

  // basic.get through sagaflow.dead; a selected one is re-published to sagaflow.events with its
  // original routing key and acked; the others stay unacked until the channel closes, which
  // returns them to the queue in their order. The scan takes at most the messages ready when it
  // began (a replayed one dead-lettered again meanwhile is not taken twice) and ends early once
  // `limit` were replayed.
  ReplayOutcome replay_dead_letters(std::int64_t limit,
                                    const DeadLetterSelect& select) const override {
    ReplayOutcome out;
    auto session = rabbit::BlockingAmqp::open(config_.amqp);
    if (!session) {
      out.error = std::move(session).error();
      return out;
    }
    rabbit::BlockingAmqp& s = *session.value();
    if (auto st = s.enable_confirms(); !st) {
      out.error = st.error();
      return out;
    }
    auto depth = s.queue_depth(topology::kDeadQueue);
    if (!depth) {
      out.error = std::move(depth).error();
      return out;
    }
    std::int64_t left = depth.value();
    while (out.replayed < limit) {
      if (left-- <= 0) {
        out.complete = true;
        break;
      }
      auto got = get_dead_letter(s);
      if (!got) {
        out.error = std::move(got).error();
        return out;
      }
      if (!got.value()) {
        out.complete = true;
        break;
      }
      const AmqpDeadLetter& d = *got.value();
      if (select && !select(selection_view(d.id, d.reason)))
        continue;  // back to the queue on close
      if (auto st = s.publish_confirmed(topology::kEventsExchange, d.route, d.message_id, d.body);
          !st) {
        out.error = make_error(
            st.error().code,
            fmt::format("{} (that one stays in {})", st.error().detail, topology::kDeadQueue));
        return out;
      }
      if (!s.ack(d.tag)) {
        out.error = make_error(Errc::unavailable,
                               "ack failed after a publish: that one may be replayed twice");
        return out;
      }
      ++out.replayed;
      if (!d.id.empty()) out.ids.push_back(d.id);
    }
    return out;
  }

  bool replayed_dead_letters_stay() const noexcept override { return false; }

 private:
  Config config_;
};

}  // namespace

std::unique_ptr<Broker> make_rabbitmq_broker(const Config& config) {
  return std::make_unique<RabbitBroker>(config);
}

}  // namespace sagaflow::brokers::impl
