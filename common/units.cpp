#include "common/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace tiercache {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Multiplier for a unit suffix, 0 when the suffix is unknown.
double UnitMultiplier(std::string_view unit) {
  struct Unit { const char* name; double factor; };
  static const Unit kUnits[] = {
      {"", 1},          {"b", 1},
      {"k", 1024.0},    {"kib", 1024.0},    {"kb", 1e3},
      {"m", 1048576.0}, {"mib", 1048576.0}, {"mb", 1e6},
      {"g", 1073741824.0}, {"gib", 1073741824.0}, {"gb", 1e9},
      {"t", 1099511627776.0}, {"tib", 1099511627776.0}, {"tb", 1e12},
  };
  for (const Unit& u : kUnits) {
    if (EqualsIgnoreCase(unit, u.name)) return u.factor;
  }
  return 0;
}

}  // namespace

Result<uint64_t> ParseBytes(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  size_t digits = 0;
  bool seen_point = false;
  while (digits < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[digits])) || (s[digits] == '.' && !seen_point))) {
    if (s[digits] == '.') seen_point = true;
    ++digits;
  }
  std::string number(s.substr(0, digits));
  if (number.empty() || number == ".") {
    return Status::InvalidArgument("not a byte size: '" + std::string(text) + "'");
  }
  std::string_view unit = s.substr(digits);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.remove_prefix(1);
  double factor = UnitMultiplier(unit);
  if (factor == 0) {
    return Status::InvalidArgument("unknown unit in byte size: '" + std::string(text) + "'");
  }
  double value = std::stod(number) * factor;
  if (!std::isfinite(value) || value >= 18446744073709551615.0) {
    return Status::InvalidArgument("byte size too large: '" + std::string(text) + "'");
  }
  return static_cast<uint64_t>(std::llround(value));
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char buffer[32];
  if (unit == 0) {
    std::snprintf(buffer, sizeof(buffer), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.2f %s", value, kNames[unit]);
  }
  return buffer;
}

}  // namespace tiercache
