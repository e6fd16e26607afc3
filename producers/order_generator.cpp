#include "producers/order_generator.hpp"

#include <ctime>

#include <fmt/format.h>

namespace sagaflow {
namespace {

// splitmix64: a tiny, well-mixed, portable generator (std distributions differ by library).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::int64_t between(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
};

std::string money(std::int64_t cents) {
  return fmt::format("{}.{:02}", cents / 100, cents % 100);
}

constexpr std::time_t kBaseTime = 1705314600;  // 2024-01-15T10:30:00Z
constexpr const char* kCurrencies[] = {"USD", "EUR", "GBP"};

}  // namespace

OrderGenerator::OrderGenerator(std::uint64_t seed, int stores)
    : seed_(seed), stores_(stores < 1 ? 1 : stores) {}

GeneratedEvent OrderGenerator::make(std::uint64_t n) const {
  Rng rng{seed_ * 0x2545f4914f6cdd1dULL ^ n};
  GeneratedEvent e;
  e.id = fmt::format("evt_{}_{}", seed_, n);
  e.order_id = fmt::format("ord_{}_{}", seed_, n);
  e.store_id = fmt::format("store_{:03}", rng.between(1, stores_));
  const std::string customer = fmt::format("cus_{}", rng.between(1, 100000));
  const char* currency = kCurrencies[rng.between(0, 2)];

  std::string items = "[";
  std::int64_t total = 0;
  const std::int64_t count = rng.between(1, 3);
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t qty = rng.between(1, 5);
    const std::int64_t price = rng.between(100, 99999);
    total += qty * price;
    if (i > 0) items += ',';
    items += fmt::format(R"({{"sku":"sku_{}","qty":{},"price":"{}"}})", rng.between(1, 5000), qty,
                         money(price));
  }
  items += ']';

  const std::time_t t = kBaseTime + static_cast<std::time_t>(n % (10LL * 365 * 24 * 3600));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char created[32];
  std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);

  e.body = fmt::format(
      R"({{"id":"{}","type":"order.created","created":"{}","store_id":"{}","data":{{"order_id":"{}",)"
      R"("customer_id":"{}","total":"{}","currency":"{}","items":{}}}}})",
      e.id, created, e.store_id, e.order_id, customer, money(total), currency, items);
  return e;
}

}  // namespace sagaflow
