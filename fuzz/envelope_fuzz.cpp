// libFuzzer target: the envelope parser and money parsing must never crash, hang or leak on
// any input, and a body that parses must carry the invariants the worker relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/envelope.hpp"
#include "core/money.hpp"
#include "http/webhook_signature.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static sagaflow::EnvelopeParser parser(64 * 1024);
  static sagaflow::Event event;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (parser.parse(body, event).ok()) {
    // A parsed event always has what the worker needs.
    if (event.id.empty() || event.id.view().size() > sagaflow::kMaxIdBytes ||
        event.order_id.empty())
      std::abort();
    if (event.type == sagaflow::EventType::order_created &&
        (event.items_json.empty() || event.items_json[0] != '[')) {
      std::abort();
    }
  }
  (void)sagaflow::Money::parse(body.substr(0, 32), size % 2 == 0);
  static const std::string secrets[] = {"s1", "whsec_c2VjcmV0LW9uZQ=="};
  (void)sagaflow::http::verify_signature(body.substr(0, 200), body, secrets, 1'700'000'000);
  // Standard Webhooks: id, timestamp and signature header cut from the input
  const auto cut = [&](std::size_t pos, std::size_t n) {
    return pos < body.size() ? body.substr(pos, n) : std::string_view{};
  };
  (void)sagaflow::http::verify_standard(cut(0, 16), cut(16, 12), cut(28, 300), body, secrets,
                                        1'700'000'000);
  (void)sagaflow::http::secret_key(body.substr(0, 64));
  return 0;
}
