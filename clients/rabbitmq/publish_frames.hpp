#pragma once
// A basic.publish as the bytes AMQP 0-9-1 puts on the wire: its method frame, its content
// header frame and its body frames (each at most frame_max, split as the spec says), appended
// to a buffer, so that a turn's publishes leave in one send instead of rabbitmq-c's one send
// per frame (amqp_basic_publish writes the method, the header and each body frame on their
// own). The arguments and properties are encoded by rabbitmq-c itself (amqp_encode_method,
// amqp_encode_properties); only the framing around them is ours:
//   frame  = type (1 octet) | channel (2) | payload size (4) | payload | 0xCE
//   method = class id (2) | method id (2) | arguments
//   header = class id (2) | weight 0 (2) | body size (8) | property flags and properties
//   body   = the body's next frame_max - 8 octets (no body frame for an empty body)
#include <amqp.h>

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace sagaflow::rabbit {

// Appends the publish to `out`. On an error (a routing key or exchange over 255 octets, a
// property rabbitmq-c cannot encode, properties over one frame, frame_max under 4096) nothing
// is appended and the error says why (Errc::internal: the message, as built, cannot be sent).
Status append_publish(std::string& out, std::uint16_t channel, std::size_t frame_max,
                      amqp_bytes_t exchange, amqp_bytes_t routing_key,
                      const amqp_basic_properties_t& props, amqp_bytes_t body);

}  // namespace sagaflow::rabbit
