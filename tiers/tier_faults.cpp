// How a tier acts out an injected fault (see common/fault_injector.h). Every
// tier does it here, in the base class, through its own Impl calls, so a
// fault looks to the caller exactly like the failure it stands for.
#include <cstring>
#include <thread>
#include <vector>

#include "tiers/tier.h"

namespace tiercache {

Status Tier::FaultedRead(const InjectedFault& fault, uint64_t address, void* dst,
                         uint64_t bytes) {
  auto* out = static_cast<unsigned char*>(dst);
  switch (fault.action) {
    case FaultAction::kNone: break;
    case FaultAction::kDelay: std::this_thread::sleep_for(fault.delay); break;
    case FaultAction::kShortRead: {
      // The kernel said "done" after half: the tail is whatever the buffer held.
      const uint64_t half = bytes / 2;
      if (half > 0) TC_RETURN_IF_ERROR(ReadImpl(address, dst, half));
      std::memset(out + half, 0, bytes - half);
      return Status::Ok();
    }
    case FaultAction::kCorruptRead: {
      TC_RETURN_IF_ERROR(ReadImpl(address, dst, bytes));
      out[bytes / 3] ^= 0x20;
      return Status::Ok();
    }
    case FaultAction::kCorruptPage: {
      // The medium itself goes bad: the flip stays for every later read.
      unsigned char byte = 0;
      TC_RETURN_IF_ERROR(ReadImpl(address + bytes / 3, &byte, 1));
      byte ^= 0x20;
      TC_RETURN_IF_ERROR(WriteImpl(address + bytes / 3, &byte, 1));
      break;
    }
    case FaultAction::kOutOfMemory:
    case FaultAction::kOutOfSpace:
    case FaultAction::kRefuse:
    case FaultAction::kTornWrite:
    case FaultAction::kIoError:
      return Status::IoError(name() + ": injected read error (" +
                             FaultActionName(fault.action) + ")");
  }
  return ReadImpl(address, dst, bytes);
}

Status Tier::FaultedWrite(const InjectedFault& fault, uint64_t address, const void* src,
                          uint64_t bytes) {
  switch (fault.action) {
    case FaultAction::kNone: break;
    case FaultAction::kDelay: std::this_thread::sleep_for(fault.delay); break;
    case FaultAction::kTornWrite: {
      if (bytes / 2 > 0) (void)WriteImpl(address, src, bytes / 2);
      return Status::IoError(name() + ": injected torn write (" + std::to_string(bytes / 2) +
                             " of " + std::to_string(bytes) + " bytes written)");
    }
    case FaultAction::kOutOfSpace:
      return Status::OutOfSpace(name() + ": injected: no space left on the device");
    case FaultAction::kShortRead:
    case FaultAction::kCorruptRead:
    case FaultAction::kCorruptPage:
    case FaultAction::kOutOfMemory:
    case FaultAction::kRefuse:
    case FaultAction::kIoError:
      return Status::IoError(name() + ": injected write error (" +
                             FaultActionName(fault.action) + ")");
  }
  return WriteImpl(address, src, bytes);
}

}  // namespace tiercache
