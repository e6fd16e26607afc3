// Webhook signatures: any v1 with any secret, constant-time compare, 300 s window both ways.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "http/webhook_signature.hpp"

using namespace sagaflow::http;

namespace {
const std::string kBody = R"({"id":"evt_1","type":"order.cancelled","data":{"order_id":"o1"}})";
constexpr std::int64_t kNow = 1'700'000'000;
}  // namespace

TEST_CASE("a signature made with the secret verifies", "[webhook]") {
  const std::vector<std::string> secrets{"s3cret"};
  CHECK(verify_signature(sign("s3cret", kNow, kBody), kBody, secrets, kNow) == SignatureCheck::ok);
}

TEST_CASE("rotation: any v1 matching any secret is accepted", "[webhook]") {
  // Given two secrets (new, old) and a header with a wrong and a right v1
  const std::vector<std::string> secrets{"new", "old"};
  const std::string good = sign("old", kNow, kBody);
  const std::string wrong_v1 = sign("other", kNow, kBody).substr(good.find("v1="));
  const std::string header =
      "t=" + std::to_string(kNow) + "," + wrong_v1 + "," + good.substr(good.find("v1="));
  // Then it verifies
  CHECK(verify_signature(header, kBody, secrets, kNow) == SignatureCheck::ok);
}

TEST_CASE("tampering, wrong secret, replay and junk are refused", "[webhook]") {
  const std::vector<std::string> secrets{"s3cret"};
  const std::string header = sign("s3cret", kNow, kBody);
  CHECK(verify_signature(header, kBody + " ", secrets, kNow) == SignatureCheck::mismatch);
  CHECK(verify_signature(sign("nope", kNow, kBody), kBody, secrets, kNow) ==
        SignatureCheck::mismatch);
  CHECK(verify_signature(header, kBody, secrets, kNow + 301) == SignatureCheck::stale);
  CHECK(verify_signature(header, kBody, secrets, kNow - 301) == SignatureCheck::stale);
  CHECK(verify_signature(header, kBody, secrets, kNow + 300) == SignatureCheck::ok);
  CHECK(verify_signature("", kBody, secrets, kNow) == SignatureCheck::missing);
  CHECK(verify_signature("t=abc,v1=00", kBody, secrets, kNow) == SignatureCheck::malformed);
  CHECK(verify_signature("t=1700000000", kBody, secrets, kNow) == SignatureCheck::malformed);
  CHECK(verify_signature("v1=" + std::string(64, 'a'), kBody, secrets, kNow) ==
        SignatureCheck::malformed);
  CHECK(verify_signature("t=1700000000,v1=zz", kBody, secrets, kNow) == SignatureCheck::malformed);
  CHECK(verify_signature("garbage", kBody, secrets, kNow) == SignatureCheck::malformed);
}
