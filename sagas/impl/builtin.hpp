#pragma once
// The definition files of sagas/definitions/, embedded at build time by
// impl/embed_definitions.cmake (the generated builtin_definitions_data.cpp).
#include <span>
#include <string_view>

namespace sagaflow::impl {

struct BuiltinDefinition {
  std::string_view file;  // "order_fulfillment.json"
  std::string_view json;  // the file, byte for byte
};

std::span<const BuiltinDefinition> builtin_definition_files() noexcept;

}  // namespace sagaflow::impl
