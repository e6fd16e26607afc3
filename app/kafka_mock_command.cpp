// sagaflow kafka-mock: an embedded Kafka-protocol broker (librdkafka's mock cluster) on
// loopback. Prints the bootstrap address as the first line of stdout, then runs until SIGTERM
// or SIGINT. The topics of CONTRACT.md section 6 and the retry topic of each consumer group
// (topology::kafka_retry_topic) are created up front.
//
// Limits of librdkafka 2.0's mock: it keeps about 5 MiB per partition and silently drops older
// data, with no API to change that. With the 8 partitions per topic made here, sagaflow.events
// holds about 40 MiB (some 100k typical events) at a time: enough for the demo and the tests;
// for more, use a real Kafka (docker-compose.yml).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>

#include "app/commands.hpp"
#include "clients/kafka/client.hpp"
#include "topology/kafka_topology.hpp"

namespace sagaflow::app {

int run_kafka_mock(const Config&) {
  // Block SIGTERM and SIGINT before librdkafka starts any thread (threads inherit the mask), so
  // that only sigtimedwait below receives them; otherwise one of its threads could take the signal
  // and the default action would kill the process.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  constexpr int kBrokers = 1;
  constexpr int kPartitions = 8;
  // Errors only (log_level 3), written as our log lines by this thread between signals.
  kafka::ClientConfig config;
  config.settings = {{"log_level", "3"}};
  config.logs = kafka::LogStyle{};
  auto client = kafka::Client::open(RD_KAFKA_PRODUCER, config);
  if (!client) {
    std::fprintf(stderr, "sagaflow kafka-mock: %s\n", client.error().detail.c_str());
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(client->get(), kBrokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "sagaflow kafka-mock: cannot start the mock cluster\n");
    return 1;
  }
  // The same topics as `sagaflow topology apply` (which cannot create them on this mock: it
  // has no CreateTopics controller), so that apply, the workers and the tests find them.
  for (const std::string& topic : kafka_topics()) {
    rd_kafka_mock_topic_create(cluster, topic.c_str(), kPartitions, 1);
  }
  std::printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  const timespec tick{0, 200 * 1000 * 1000};
  while (sigtimedwait(&set, nullptr, &tick) < 0) client->drain_logs();
  rd_kafka_mock_cluster_destroy(cluster);
  client->destroy();
  return 0;
}

}  // namespace sagaflow::app
