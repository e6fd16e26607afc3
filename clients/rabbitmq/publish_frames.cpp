#include "clients/rabbitmq/publish_frames.hpp"

#include <amqp_framing.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace sagaflow::rabbit {
namespace {

constexpr std::size_t kFrameHead = 7;  // type, channel, payload size
constexpr unsigned char kFrameEnd = 0xCE;
constexpr std::size_t kHeaderRoom = 1024;  // a content header's first try (see below)

void put16(char* at, std::uint16_t v) {
  at[0] = static_cast<char>(v >> 8);
  at[1] = static_cast<char>(v);
}
void put32(char* at, std::uint32_t v) {
  put16(at, static_cast<std::uint16_t>(v >> 16));
  put16(at + 2, static_cast<std::uint16_t>(v));
}
void put64(char* at, std::uint64_t v) {
  put32(at, static_cast<std::uint32_t>(v >> 32));
  put32(at + 4, static_cast<std::uint32_t>(v));
}

// Opens a frame of `type` at the end of `out` with room for `room` payload octets; returns the
// payload's offset. close_frame() then fixes its size and ends it.
std::size_t open_frame(std::string& out, std::uint8_t type, std::uint16_t channel,
                       std::size_t room) {
  const std::size_t at = out.size();
  out.resize(at + kFrameHead + room + 1);
  out[at] = static_cast<char>(type);
  put16(&out[at + 1], channel);
  return at + kFrameHead;
}
void close_frame(std::string& out, std::size_t payload_at, std::size_t size) {
  put32(&out[payload_at - 4], static_cast<std::uint32_t>(size));
  out.resize(payload_at + size + 1);
  out[payload_at + size] = static_cast<char>(kFrameEnd);
}

}  // namespace

Status append_publish(std::string& out, std::uint16_t channel, std::size_t frame_max,
                      amqp_bytes_t exchange, amqp_bytes_t routing_key,
                      const amqp_basic_properties_t& props, amqp_bytes_t body) {
  if (frame_max < 4096) {
    return make_error(Errc::internal, fmt::format("frame_max {} is under 4096", frame_max));
  }
  const std::size_t start = out.size();
  const std::size_t payload_max = frame_max - kFrameHead - 1;
  auto fail = [&](const char* what, int rc) -> Status {
    out.resize(start);
    return make_error(Errc::internal,
                      fmt::format("cannot encode a publish's {}: {}", what,
                                  rc < 0 ? amqp_error_string2(rc) : "no length returned"));
  };

  // The method frame: basic.publish's arguments (two short strings and a few octets).
  amqp_basic_publish_t method{};
  method.exchange = exchange;
  method.routing_key = routing_key;
  std::size_t at = open_frame(out, AMQP_FRAME_METHOD, channel, 4 + 2 + 2 * 256 + 1);
  put32(&out[at], AMQP_BASIC_PUBLISH_METHOD);
  const int args = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &method,
                                      amqp_bytes_t{out.size() - at - 5, &out[at + 4]});
  // rabbitmq-c's encoders return the octets written (its own framing reads them so; its header
  // says "0 on success"): arguments and properties are never empty, so 0 would mean a library
  // that does not say the length, and the frame cannot be built.
  if (args <= 0) return fail("method", args);
  close_frame(out, at, 4 + static_cast<std::size_t>(args));

  // The content header: the properties must fit one frame. Encoded into a room that fits
  // the usual few properties first, and into a whole frame's only when that is too small
  // (rabbitmq-c says only that it failed), so a publish does not fill 128 KiB to use 100.
  const std::size_t header_at = out.size();
  auto* decoded = const_cast<amqp_basic_properties_t*>(&props);  // rabbitmq-c only reads it
  int encoded = 0;
  for (const std::size_t room : {std::min<std::size_t>(kHeaderRoom, payload_max), payload_max}) {
    out.resize(header_at);
    at = open_frame(out, AMQP_FRAME_HEADER, channel, room);
    put16(&out[at], AMQP_BASIC_CLASS);
    put16(&out[at + 2], 0);
    put64(&out[at + 4], body.len);
    encoded =
        amqp_encode_properties(AMQP_BASIC_CLASS, decoded, amqp_bytes_t{room - 12, &out[at + 12]});
    if (encoded > 0 || room == payload_max) break;
  }
  if (encoded <= 0) return fail("properties", encoded);
  close_frame(out, at, 12 + static_cast<std::size_t>(encoded));

  // The body, in frames of at most frame_max octets.
  const auto* bytes = static_cast<const char*>(body.bytes);
  for (std::size_t sent = 0; sent < body.len;) {
    const std::size_t n = std::min(payload_max, body.len - sent);
    at = open_frame(out, AMQP_FRAME_BODY, channel, n);
    std::memcpy(&out[at], bytes + sent, n);
    close_frame(out, at, n);
    sent += n;
  }
  return {};
}

}  // namespace sagaflow::rabbit
