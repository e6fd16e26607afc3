#include "core/hashed_key.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <unordered_map>

using sagaflow::HashedKey;

namespace {
using Map = std::unordered_map<HashedKey, int, HashedKey::Hash, HashedKey::Same>;
}

TEST_CASE("a HashedKey map is looked up by a view, hashed once", "[core]") {
  Map m;
  m.try_emplace(HashedKey(std::string("order-0001")), 1);
  m.try_emplace(HashedKey(std::string(40, 'x')), 2);  // a key on the heap
  CHECK(m.find(HashedKey::probe("order-0001"))->second == 1);
  CHECK(m.find(HashedKey::probe(std::string(40, 'x')))->second == 2);
  CHECK(m.find(HashedKey::probe("order-0002")) == m.end());
  CHECK(HashedKey(std::string("abc")).hash() == std::hash<std::string_view>{}("abc"));
  CHECK(HashedKey(HashedKey::probe("abc")).hash() == HashedKey(std::string("abc")).hash());
}

TEST_CASE("equal hashes with other texts are other keys", "[core]") {
  // Two keys forced onto one hash: the texts decide, in the map and in a lookup.
  Map m;
  m.try_emplace(HashedKey(HashedKey::Probe{"a", 7}), 1);
  m.try_emplace(HashedKey(HashedKey::Probe{"b", 7}), 2);
  CHECK(m.size() == 2);
  CHECK(m.find(HashedKey::Probe{"a", 7})->second == 1);
  CHECK(m.find(HashedKey::Probe{"b", 7})->second == 2);
  CHECK(m.find(HashedKey::Probe{"c", 7}) == m.end());
  // the same text under another hash is not found (the hash is the key's, never recomputed)
  CHECK(m.find(HashedKey::Probe{"a", 8}) == m.end());
}

TEST_CASE("a reused node is re-keyed with its new hash", "[core]") {
  Map m;
  m.try_emplace(HashedKey(std::string("first")), 1);
  auto node = m.extract(m.find(HashedKey::probe("first")));
  REQUIRE_FALSE(node.empty());
  node.key().assign(HashedKey::probe("second"));
  m.insert(std::move(node));
  CHECK(m.find(HashedKey::probe("first")) == m.end());
  CHECK(m.find(HashedKey::probe("second"))->second == 1);
}
