#pragma once
// A string key that carries its hash, for unordered maps looked up by std::string_view.
//
// libstdc++ stores no hash in the nodes of a map whose hasher is a custom (transparent) one, so
// a lookup walking a bucket re-hashes every key it passes, reading each from the heap. A
// HashedKey keeps the hash beside its text: the walk compares hashes and reads a text only when
// they are equal. Use std::unordered_map<HashedKey, V, HashedKey::Hash, HashedKey::Same>,
// looked up with find(HashedKey::probe(view)).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace sagaflow {

struct HashedKey {
  std::string text;
  std::size_t hash = 0;

  // A lookup by a view, hashed once.
  struct Probe {
    std::string_view text;
    std::size_t hash = 0;
  };

  static std::size_t hash_of(std::string_view s) noexcept {
    return std::hash<std::string_view>{}(s);
  }
  static Probe probe(std::string_view s) noexcept { return Probe{s, hash_of(s)}; }
  static HashedKey of(std::string s) {
    const std::size_t h = hash_of(s);
    return HashedKey{std::move(s), h};
  }
  // Re-keys (a reused map node's key, keeping its capacity).
  void assign(std::string_view s) {
    text.assign(s.data(), s.size());
    hash = hash_of(s);
  }

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(const HashedKey& k) const noexcept { return k.hash; }
    std::size_t operator()(const Probe& p) const noexcept { return p.hash; }
  };
  struct Same {
    using is_transparent = void;
    bool operator()(const HashedKey& a, const HashedKey& b) const noexcept {
      return a.hash == b.hash && a.text == b.text;
    }
    bool operator()(const Probe& a, const HashedKey& b) const noexcept {
      return a.hash == b.hash && a.text == b.text;
    }
    bool operator()(const HashedKey& a, const Probe& b) const noexcept { return (*this)(b, a); }
  };
};

}  // namespace sagaflow
