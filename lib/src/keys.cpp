#include "keys.hpp"

#include <array>
#include <cstdint>

namespace redlock::detail {
namespace {

// The resource's own hash tag, by Redis Cluster's rule, if it has one.
std::string_view own_tag(std::string_view resource) {
  if (const auto open = resource.find('{'); open != std::string_view::npos) {
    const auto close = resource.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      return resource.substr(open + 1, close - open - 1);
    }
  }
  return {};
}

// Calls `fn` with each piece of the resource's hash tag (hash_tag()), in
// order, without building it.
template <typename Fn>
void for_each_tag_piece(std::string_view resource, Fn fn) {
  if (const auto tag = own_tag(resource); !tag.empty()) {
    fn(tag);
    return;
  }
  // An empty tag ("{}") would not count as one: Redis would hash each key
  // whole. "%" alone never comes out of the escaping below.
  if (resource.empty()) {
    fn("%");
    return;
  }
  std::size_t from = 0;
  for (std::size_t i = 0; i < resource.size(); ++i) {
    const char c = resource[i];
    if (c != '%' && c != '}') continue;
    fn(resource.substr(from, i - from));
    fn(c == '%' ? std::string_view("%25") : std::string_view("%7D"));
    from = i + 1;
  }
  fn(resource.substr(from));
}

std::string make(std::string_view purpose, std::string_view resource) {
  std::string out;
  out.reserve(kKeyPrefix.size() + 2 * resource.size() + purpose.size() + 8);
  out.append(kKeyPrefix);
  out += '{';
  for_each_tag_piece(resource, [&](std::string_view piece) { out.append(piece); });
  out += "}:";
  out.append(purpose);
  out += ':';
  out.append(resource);
  return out;
}

template <typename Fn>
std::vector<std::string> each(const std::vector<std::string>& resources, Fn fn) {
  std::vector<std::string> out;
  out.reserve(resources.size());
  for (const auto& r : resources) out.push_back(fn(r));
  return out;
}

// CRC16-CCITT (XMODEM), as Redis Cluster computes key slots.
constexpr std::array<std::uint16_t, 256> make_crc_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}

constexpr auto kCrcTable = make_crc_table();

std::uint16_t crc16(std::string_view data, std::uint16_t crc = 0) noexcept {
  for (const char c : data) {
    crc = static_cast<std::uint16_t>(
        (crc << 8) ^ kCrcTable[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xFF]);
  }
  return crc;
}

}  // namespace

std::string hash_tag(std::string_view resource) {
  std::string tag;
  tag.reserve(resource.size());
  for_each_tag_piece(resource, [&](std::string_view piece) { tag.append(piece); });
  return tag;
}

std::string lock_key(std::string_view resource) { return make("lock", resource); }
std::string fence_key(std::string_view resource) { return make("fence", resource); }
std::string release_channel(std::string_view resource) { return make("released", resource); }

std::vector<std::string> lock_keys(const std::vector<std::string>& resources) {
  return each(resources, [](const std::string& r) { return lock_key(r); });
}
std::vector<std::string> fence_keys(const std::vector<std::string>& resources) {
  return each(resources, [](const std::string& r) { return fence_key(r); });
}
std::vector<std::string> release_channels(const std::vector<std::string>& resources) {
  return each(resources, [](const std::string& r) { return release_channel(r); });
}

unsigned key_slot(std::string_view key) noexcept {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & 16383U;
}

// The slot of every key of the resource: that of its hash tag, hashed as it
// is made, with no key built (an acquire and a release each need it).
unsigned resource_slot(std::string_view resource) {
  std::uint16_t crc = 0;
  for_each_tag_piece(resource, [&](std::string_view piece) { crc = crc16(piece, crc); });
  return crc & 16383U;
}

}  // namespace redlock::detail
