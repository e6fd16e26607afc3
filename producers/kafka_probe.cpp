#include "producers/kafka_probe.hpp"

#include <librdkafka/rdkafka.h>

#include <fmt/format.h>

#include "clients/kafka/client.hpp"

namespace sagaflow {

Status probe_kafka(const std::string& brokers, std::int64_t timeout_ms) {
  kafka::ClientConfig config;
  config.brokers = brokers;
  config.settings = {{"log_level", "0"}};  // and no LogStyle: librdkafka stays silent
  auto client = kafka::Client::open(RD_KAFKA_PRODUCER, config);
  if (!client) {
    if (client.error().detail.starts_with("librdkafka property")) {
      return make_error(Errc::invalid_config, fmt::format("SAGAFLOW_KAFKA_BROKERS: '{}': {}",
                                                          brokers, client.error().detail));
    }
    return make_error(Errc::unavailable, fmt::format("Kafka client: {}", client.error().detail));
  }
  const struct rd_kafka_metadata* md = nullptr;
  const rd_kafka_resp_err_t rc =
      rd_kafka_metadata(client->get(), 0, nullptr, &md, static_cast<int>(timeout_ms));
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  client->destroy();
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(Errc::unavailable,
                      fmt::format("Kafka at {} did not answer within {} ms ({}); is it running? "
                                  "(SAGAFLOW_KAFKA_BROKERS)",
                                  brokers, timeout_ms, rd_kafka_err2str(rc)));
  }
  return Status::success();
}

}  // namespace sagaflow
