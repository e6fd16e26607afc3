// append_publish (clients/rabbitmq/publish_frames): a basic.publish's frames, byte for byte as
// AMQP 0-9-1 lays them out, the body split at frame_max, and nothing appended on an error.
// No broker (the integration tests send these frames to a real RabbitMQ). And worth_reading,
// which spares a readable() loop the read that would only say EAGAIN.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "clients/rabbitmq/amqp_link.hpp"
#include "clients/rabbitmq/publish_frames.hpp"

using sagaflow::rabbit::append_publish;

namespace {

amqp_bytes_t bytes_of(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

struct Frame {
  int type;
  int channel;
  std::string payload;
};

// Splits `wire` into frames, checking each one's size and end octet.
std::vector<Frame> frames_of(const std::string& wire) {
  std::vector<Frame> out;
  std::size_t at = 0;
  auto octet = [&](std::size_t i) { return static_cast<unsigned char>(wire.at(i)); };
  while (at < wire.size()) {
    REQUIRE(wire.size() - at >= 8);
    const std::uint32_t size = (std::uint32_t{octet(at + 3)} << 24) |
                               (std::uint32_t{octet(at + 4)} << 16) |
                               (std::uint32_t{octet(at + 5)} << 8) | octet(at + 6);
    REQUIRE(at + 7 + size + 1 <= wire.size());
    REQUIRE(octet(at + 7 + size) == 0xCE);
    out.push_back(
        Frame{octet(at), (octet(at + 1) << 8) | octet(at + 2), wire.substr(at + 7, size)});
    at += 8 + size;
  }
  return out;
}

amqp_basic_properties_t json_persistent() {
  amqp_basic_properties_t p{};
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  p.content_type = amqp_cstring_bytes("a/j");
  p.delivery_mode = 2;
  return p;
}

}  // namespace

TEST_CASE("a small publish is a method, a header and a body frame, as the spec lays them out",
          "[amqp]") {
  std::string out = "kept";  // earlier frames of the turn stay in front
  const std::string ex = "ex", rk = "rk", body = "hello";
  REQUIRE(append_publish(out, 1, 131072, bytes_of(ex), bytes_of(rk), json_persistent(),
                         bytes_of(body)));
  const std::string expected = std::string("kept") +
                               // method: basic.publish (60, 40), ticket 0, "ex", "rk", no flags
                               std::string("\x01\x00\x01\x00\x00\x00\x0d", 7) +
                               std::string(
                                   "\x00\x3c\x00\x28\x00\x00\x02"
                                   "ex\x02"
                                   "rk\x00\xce",
                                   14) +
                               // header: class 60, weight 0, body size 5, flags 0x9000,
                               // content-type "a/j", delivery-mode 2
                               std::string("\x02\x00\x01\x00\x00\x00\x13", 7) +
                               std::string("\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05", 12) +
                               std::string(
                                   "\x90\x00\x03"
                                   "a/j\x02\xce",
                                   8) +
                               // body
                               std::string(
                                   "\x03\x00\x01\x00\x00\x00\x05"
                                   "hello\xce",
                                   13);
  CHECK(out == expected);
}

TEST_CASE("a body is split into frames of at most frame_max octets; an empty body has none",
          "[amqp]") {
  const std::string q = "q";
  std::string body(10000, 'x');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  std::string out;
  REQUIRE(
      append_publish(out, 7, 4096, bytes_of(""), bytes_of(q), json_persistent(), bytes_of(body)));
  const auto frames = frames_of(out);
  REQUIRE(frames.size() == 2 + 3);
  CHECK(frames[0].type == 1);
  CHECK(frames[1].type == 2);
  std::string joined;
  for (std::size_t i = 2; i < frames.size(); ++i) {
    CHECK(frames[i].type == 3);
    CHECK(frames[i].channel == 7);
    CHECK(frames[i].payload.size() + 8 <= 4096);
    joined += frames[i].payload;
  }
  CHECK(frames[2].payload.size() == 4088);
  CHECK(joined == body);

  std::string empty;
  REQUIRE(
      append_publish(empty, 1, 4096, bytes_of(""), bytes_of(q), json_persistent(), bytes_of("")));
  const auto two = frames_of(empty);
  REQUIRE(two.size() == 2);
  CHECK(two[1].payload.substr(4, 8) == std::string(8, '\0'));  // body size 0
}

TEST_CASE("a publish that cannot be encoded appends nothing and says why", "[amqp]") {
  std::string out = "earlier frames";
  const std::string too_long(256, 'k');
  const auto s = append_publish(out, 1, 131072, bytes_of(""), bytes_of(too_long), json_persistent(),
                                bytes_of("{}"));
  REQUIRE_FALSE(s);
  CHECK(s.error().detail.find("method") != std::string::npos);
  CHECK(out == "earlier frames");

  // Properties over one frame (a header table larger than frame_max).
  const std::string big(5000, 'v');
  amqp_table_entry_t entry{};
  entry.key = amqp_cstring_bytes("x-big");
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = bytes_of(big);
  amqp_basic_properties_t p = json_persistent();
  p._flags |= AMQP_BASIC_HEADERS_FLAG;
  p.headers = amqp_table_t{1, &entry};
  const auto h = append_publish(out, 1, 4096, bytes_of(""), bytes_of("q"), p, bytes_of("{}"));
  REQUIRE_FALSE(h);
  CHECK(h.error().detail.find("properties") != std::string::npos);
  CHECK(out == "earlier frames");
}

TEST_CASE("a readable() loop reads the socket once per call when rabbitmq-c holds nothing",
          "[amqp]") {
  // A connection state without a socket: nothing buffered, no frames queued.
  amqp_connection_state_t conn = amqp_new_connection();
  bool socket_read = false;
  CHECK(sagaflow::rabbit::worth_reading(conn, socket_read));  // the first read of the call
  CHECK(socket_read);
  CHECK_FALSE(sagaflow::rabbit::worth_reading(conn, socket_read));  // a second would be EAGAIN
  bool next_call = false;
  CHECK(sagaflow::rabbit::worth_reading(conn, next_call));
  amqp_destroy_connection(conn);
}
