#pragma once
// A string key that carries its hash, for unordered maps looked up by std::string_view.
//
// libstdc++ stores no hash in the nodes of a map whose hasher is a custom (transparent,
// noexcept) one, so a lookup walking a bucket re-hashes every key it passes, reading each from
// the heap. A HashedKey keeps the hash beside its text: the walk compares hashes and reads a
// text only when they are equal. Use std::unordered_map<HashedKey, V, HashedKey::Hash,
// HashedKey::Same>, looked up with find(HashedKey::probe(view)).
//
// A key's hash is always its text's: the fields are private, and a key is made from a text
// (hashed here) or from a probe (hashed by probe()).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace sagaflow {

class HashedKey {
 public:
  // A lookup by a view, hashed once.
  struct Probe {
    std::string_view text;
    std::size_t hash = 0;
  };
  static Probe probe(std::string_view s) noexcept {
    return Probe{s, std::hash<std::string_view>{}(s)};
  }

  explicit HashedKey(std::string text) : text_(std::move(text)), hash_(probe(text_).hash) {}
  explicit HashedKey(const Probe& p) : text_(p.text), hash_(p.hash) {}

  // Re-keys (a reused map node's key, keeping its capacity).
  void assign(const Probe& p) {
    text_.assign(p.text.data(), p.text.size());
    hash_ = p.hash;
  }

  const std::string& text() const noexcept { return text_; }
  std::size_t hash() const noexcept { return hash_; }

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(const HashedKey& k) const noexcept { return k.hash_; }
    std::size_t operator()(const Probe& p) const noexcept { return p.hash; }
  };
  struct Same {
    using is_transparent = void;
    bool operator()(const HashedKey& a, const HashedKey& b) const noexcept {
      return a.hash_ == b.hash_ && a.text_ == b.text_;
    }
    bool operator()(const Probe& a, const HashedKey& b) const noexcept {
      return a.hash == b.hash_ && a.text == b.text_;
    }
    bool operator()(const HashedKey& a, const Probe& b) const noexcept { return (*this)(b, a); }
  };

 private:
  std::string text_;
  std::size_t hash_;
};

}  // namespace sagaflow
