#pragma once
// The JSON objects of CONTRACT.md section 9 (`endpoints list --json`, `deliveries list
// --json`), shared by the command line and the console's API.
#include <map>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "delivery/breaker.hpp"
#include "delivery/endpoint.hpp"
#include "delivery/record.hpp"
#include "store/deliveries.hpp"

namespace sagaflow::app {

// The deliveries store as configured (partitions, TTL, log size): the deliverer, the
// `endpoints` / `deliveries` commands and the console use the same.
store::DeliveriesOptions deliveries_options(const Config& config);

// RFC 3339 UTC to the second; "-" for 0.
std::string iso_time(Millis ms);

// id, url, events, store_id, plan, state, circuit (and the secrets' creation times).
std::string endpoint_json(const delivery::Endpoint& e, delivery::Circuit circuit,
                          bool with_secret_times);

// One delivery: an event to one endpoint, from the attempts log.
struct DeliveryRow {
  std::string event_id, endpoint;
  std::string raw;  // the record as stored
  delivery::DeliveryRecord record;
  Millis created_ms = 0;
};

// The deliveries of logged events (each event's hash: created, and one record per endpoint).
std::vector<DeliveryRow> rows_of(const std::vector<store::Deliveries::Logged>& logged);
// Pending after at least one failed attempt.
bool failed_row(const DeliveryRow& r);
// event_id, endpoint, state, attempts, last_status, next_at.
std::string row_json(const DeliveryRow& r);

}  // namespace sagaflow::app
