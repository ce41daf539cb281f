// Test helper: bytes from hex text ("45 00 00 1c ..."; spaces and newlines
// are ignored).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

inline std::vector<std::byte> hex(std::string_view s) {
  std::vector<std::byte> out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (size_t i = 0; i < s.size();) {
    if (s[i] == ' ' || s[i] == '\n') {
      ++i;
      continue;
    }
    out.push_back(std::byte(nib(s[i]) * 16 + nib(s[i + 1])));
    i += 2;
  }
  return out;
}
