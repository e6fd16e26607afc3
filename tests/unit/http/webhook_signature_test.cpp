// Webhook signatures: any v1 with any secret, constant-time compare, 300 s window both ways.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
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

TEST_CASE("a malformed v1 entry beside a matching one is skipped, not a refusal", "[webhook]") {
  const std::vector<std::string> secrets{"s3cret"};
  const std::string good = sign("s3cret", kNow, kBody);  // t=...,v1=<hex>
  const std::string t = good.substr(0, good.find(','));
  const std::string v1 = good.substr(good.find(',') + 1);
  CHECK(verify_signature(t + ",v1=zz," + v1, kBody, secrets, kNow) == SignatureCheck::ok);
  CHECK(verify_signature(t + ",garbage," + v1 + ",v0=abc", kBody, secrets, kNow) ==
        SignatureCheck::ok);
  // Only malformed entries: refused
  CHECK(verify_signature(t + ",v1=zz,v1=", kBody, secrets, kNow) == SignatureCheck::malformed);
  // Two timestamps are ambiguous: refused
  CHECK(verify_signature(t + "," + t + "," + v1, kBody, secrets, kNow) ==
        SignatureCheck::malformed);
}

TEST_CASE("Standard Webhooks: the published test vector, whsec_ keys", "[webhook]") {
  const std::vector<std::string> secrets{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
  const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const std::string body = R"({"test": 2432232314})";
  constexpr std::int64_t t = 1614265330;
  const std::string expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  CHECK(sign_standard(secrets, id, t, body) == expected);
  CHECK(verify_standard(id, "1614265330", expected, body, secrets, t) == SignatureCheck::ok);
  // Changed id, timestamp or body: no match
  CHECK(verify_standard("msg_other", "1614265330", expected, body, secrets, t) ==
        SignatureCheck::mismatch);
  CHECK(verify_standard(id, "1614265331", expected, body, secrets, t) == SignatureCheck::mismatch);
  CHECK(verify_standard(id, "1614265330", expected, body + " ", secrets, t) ==
        SignatureCheck::mismatch);
  // The key is the decoded secret, not its text
  const std::vector<std::string> as_text{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
  CHECK(verify_standard(id, "1614265330", expected, body, as_text, t) == SignatureCheck::mismatch);
}

TEST_CASE("Standard Webhooks: rotation, skipped entries, window, missing parts", "[webhook]") {
  const std::vector<std::string> signer{"whsec_c2VjcmV0LW9uZQ==", "plain-two"};
  const std::string sig = sign_standard(signer, "evt_1", kNow, kBody);
  CHECK(std::count(sig.begin(), sig.end(), ' ') == 1);  // one entry per secret
  const std::string ts = std::to_string(kNow);
  // The receiver knows only the second secret (rotation): accepted
  const std::vector<std::string> second{"plain-two"};
  CHECK(verify_standard("evt_1", ts, sig, kBody, second, kNow) == SignatureCheck::ok);
  // Malformed and unknown-version entries are skipped
  const std::string noisy = "v1,!!!notbase64 v2,abcd v1a,xyz v1, junk " + sig;
  CHECK(verify_standard("evt_1", ts, noisy, kBody, second, kNow) == SignatureCheck::ok);
  CHECK(verify_standard("evt_1", ts, "v1,!!! v2,abcd", kBody, second, kNow) ==
        SignatureCheck::malformed);
  // 300 s either way
  for (const std::int64_t skew : {-299, 299}) {
    const auto t = kNow + skew;
    CHECK(verify_standard("evt_1", std::to_string(t), sign_standard(second, "evt_1", t, kBody),
                          kBody, second, kNow) == SignatureCheck::ok);
  }
  for (const std::int64_t skew : {-301, 301}) {
    const auto t = kNow + skew;
    CHECK(verify_standard("evt_1", std::to_string(t), sign_standard(second, "evt_1", t, kBody),
                          kBody, second, kNow) == SignatureCheck::stale);
  }
  CHECK(verify_standard("evt_1", ts, "", kBody, second, kNow) == SignatureCheck::missing);
  CHECK(verify_standard("", ts, sig, kBody, second, kNow) == SignatureCheck::malformed);
  CHECK(verify_standard("evt_1", "soon", sig, kBody, second, kNow) == SignatureCheck::malformed);
}

TEST_CASE("whsec_ secrets decode as base64; a bad one is refused", "[webhook]") {
  CHECK(secret_key("whsec_c2VjcmV0LW9uZQ==") == std::optional<std::string>("secret-one"));
  CHECK(secret_key("plain") == std::optional<std::string>("plain"));
  CHECK_FALSE(secret_key("whsec_not base64"));
  CHECK_FALSE(secret_key("whsec_abc"));
  CHECK_FALSE(secret_key("whsec_===="));      // padding only
  CHECK_FALSE(secret_key("whsec_AA==AAAA"));  // padding inside
  CHECK_FALSE(secret_key("whsec_A==="));
  CHECK_FALSE(secret_key("whsec_"));
  CHECK(secret_key("whsec_AA==") == std::optional<std::string>(std::string(1, '\0')));
  // Both schemes use the decoded key
  const std::vector<std::string> encoded{"whsec_c2VjcmV0LW9uZQ=="};
  CHECK(verify_signature(sign("secret-one", kNow, kBody), kBody, encoded, kNow) ==
        SignatureCheck::ok);
  CHECK(verify_signature(sign(encoded, kNow, kBody), kBody, encoded, kNow) == SignatureCheck::ok);
}
