// PCI bus id parsing and formatting for Topology (no hwloc needed here).
#include <cstdio>
#include <string>
#include <string_view>

#include "tiers/topology.h"

namespace tiercache {
namespace {

bool ParseHex(std::string_view text, size_t max_digits, unsigned* value) {
  if (text.empty() || text.size() > max_digits) return false;
  unsigned result = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return false;
    }
    result = result * 16 + static_cast<unsigned>(digit);
  }
  *value = result;
  return true;
}

}  // namespace

Result<PciAddress> ParsePciBusId(std::string_view text) {
  const Status malformed = Status::InvalidArgument(
      "PCI bus id \"" + std::string(text) + "\" is not of the form DDDD:BB:DD.F");
  const size_t dot = text.rfind('.');
  const size_t last_colon = text.rfind(':');
  if (dot == std::string_view::npos || last_colon == std::string_view::npos || dot < last_colon) {
    return malformed;
  }
  PciAddress address;
  const size_t first_colon = text.find(':');
  std::string_view bus = text.substr(0, last_colon);
  if (first_colon != last_colon) {
    // 8 digits: nvidia-smi pads the domain to 32 bits.
    if (!ParseHex(text.substr(0, first_colon), 8, &address.domain)) return malformed;
    bus = text.substr(first_colon + 1, last_colon - first_colon - 1);
  }
  const bool ok = ParseHex(bus, 2, &address.bus) &&
                  ParseHex(text.substr(last_colon + 1, dot - last_colon - 1), 2, &address.device) &&
                  ParseHex(text.substr(dot + 1), 1, &address.function) && address.device < 32 &&
                  address.function < 8;
  if (!ok) return malformed;
  return address;
}

std::string FormatPciBusId(const PciAddress& address) {
  char text[32];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.%x", address.domain, address.bus,
                address.device, address.function);
  return text;
}

}  // namespace tiercache
