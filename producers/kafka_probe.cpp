#include "producers/kafka_probe.hpp"

#include <librdkafka/rdkafka.h>

#include <array>

#include <fmt/format.h>

namespace sagaflow {

Status probe_kafka(const std::string& brokers, std::int64_t timeout_ms) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err.data(), err.size()) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "0", err.data(), err.size()) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return make_error(Errc::invalid_config,
                      fmt::format("SAGAFLOW_KAFKA_BROKERS: '{}': {}", brokers, err.data()));
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err.data(), err.size());
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(Errc::unavailable, fmt::format("Kafka client: {}", err.data()));
  }
  const struct rd_kafka_metadata* md = nullptr;
  const rd_kafka_resp_err_t rc =
      rd_kafka_metadata(rk, 0, nullptr, &md, static_cast<int>(timeout_ms));
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(Errc::unavailable,
                      fmt::format("Kafka at {} did not answer within {} ms ({}); is it running? "
                                  "(SAGAFLOW_KAFKA_BROKERS)",
                                  brokers, timeout_ms, rd_kafka_err2str(rc)));
  }
  return Status::success();
}

}  // namespace sagaflow
