// Envelope parse + validate throughput, next to a bare simdjson parse of the same messages.
//   bare: simdjson On-Demand (same kernel) iterating the document and reading the fields the
//         worker needs (id, type, data.order_id), without validation: the parsing floor.
//   dom:  simdjson's DOM parser (full validation, runtime-dispatched kernel).
//   ours: EnvelopeParser::parse (full validation, exact money, typed Event), one Event reused.
// Usage: parse_bench [N=200000]
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/envelope.hpp"

namespace {

std::vector<std::string> make_messages(int n) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::string order = "ord_" + std::to_string(i);
    switch (i % 4) {
      case 0:
        out.push_back(
            R"({"id":"evt_)" + std::to_string(i) +
            R"(","type":"order.created","created":"2024-01-15T10:30:00Z","store_id":"store_012","data":{"order_id":")" +
            order +
            R"(","customer_id":"cus_4711","total":"149.97","currency":"EUR","items":[{"sku":"SKU-1","qty":2,"price":"49.99"},{"sku":"SKU-2","qty":1,"price":49.99}]}})");
        break;
      case 1:
        out.push_back(R"({"id":"r_)" + std::to_string(i) +
                      R"(","type":"inventory.reserved","data":{"order_id":")" + order +
                      R"(","reservation_id":"res_0123456789abcdef"}})");
        break;
      case 2:
        out.push_back(R"({"id":"p_)" + std::to_string(i) +
                      R"(","type":"payment.completed","data":{"order_id":")" + order +
                      R"(","payment_id":"pay_0123456789abcdef","amount":"149.97"}})");
        break;
      default:
        out.push_back(R"({"id":"s_)" + std::to_string(i) +
                      R"(","type":"shipment.created","data":{"order_id":")" + order +
                      R"(","shipment_id":"shp_0123456789abcdef"}})");
    }
  }
  return out;
}

template <class F>
double rate(const std::vector<std::string>& msgs, F&& f) {
  for (int i = 0; i < 1000; ++i) f(msgs[static_cast<std::size_t>(i) % msgs.size()]);  // warm up
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t ok = 0;
  for (const auto& m : msgs) ok += f(m) ? 1 : 0;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ok != msgs.size()) std::fprintf(stderr, "warning: %zu of %zu parsed\n", ok, msgs.size());
  return static_cast<double>(msgs.size()) / s;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200000;
  const auto msgs = make_messages(n);
  std::size_t bytes = 0;
  for (const auto& m : msgs) bytes += m.size();
  const double avg = static_cast<double>(bytes) / static_cast<double>(msgs.size());

  simdjson::ondemand::parser od;
  simdjson::padded_string buf(std::size_t{4096});
  const double bare = rate(msgs, [&](const std::string& m) {
    std::memcpy(buf.data(), m.data(), m.size());
    auto doc = od.iterate(buf.data(), m.size(), buf.size());
    std::string_view id, type, order;
    if (doc["id"].get_string().get(id) || doc["type"].get_string().get(type)) return false;
    return !doc["data"]["order_id"].get_string().get(order);
  });
  simdjson::dom::parser dom;
  const double dom_rate = rate(msgs, [&](const std::string& m) {
    simdjson::dom::element e;
    return !dom.parse(m.data(), m.size(), true).get(e);
  });
  sagaflow::EnvelopeParser parser;
  sagaflow::Event event;
  const double ours = rate(msgs, [&](const std::string& m) { return parser.parse(m, event).ok(); });

  std::printf("parse_bench: %d envelopes, %.0f bytes on average\n", n, avg);
  std::printf(
      "  bare simdjson on-demand (3 fields, no validation): %9.0f envelopes/s  %6.1f MB/s\n", bare,
      bare * avg / 1e6);
  std::printf(
      "  simdjson DOM (full validation):                     %9.0f envelopes/s  %6.1f MB/s\n",
      dom_rate, dom_rate * avg / 1e6);
  std::printf(
      "  sagaflow EnvelopeParser (parse + validate + typed): %9.0f envelopes/s  %6.1f MB/s\n", ours,
      ours * avg / 1e6);
  std::printf("  ratio ours/bare: %.2f   ours/dom: %.2f\n", ours / bare, ours / dom_rate);
  return 0;
}
