// StagedReader: reads a stretch of a host tier (NVMe, PMEM, unpinned DRAM)
// into the staging ring a piece at a time, keeping several reads in flight
// so the medium never waits for the worker between pieces.
//
// Contract
// - Pieces are chunk_bytes long (the last may be shorter) and come out of
//   Next() in order, each in a staging slot that the caller owns until it
//   calls Done(piece, recorded) (StagingPool::Release), which it must do
//   before the next Next(): so at most `depth` slots are in use, being
//   read or the caller's. Next() tops the window up (acquiring
//   the next slots in ring order and starting their reads with
//   Tier::ReadAsync) before it waits for the oldest.
// - Each piece is checked against (*checksums)[index] when there is one. A
//   piece whose read failed or whose bytes do not match is read again,
//   synchronously, through `reread` (TransferEngine::ReadChunk with its
//   retries); its error, if that fails too, is the piece's status. When
//   `fill` is non-null (and there are no checksums), the CRC32C of each good
//   piece is appended to it in order.
// - The destructor waits for the reads still in flight (they write into
//   slots) and hands their slots back unrecorded.
//
// Thread safety: one thread drives a reader; the tier's completions may
// arrive on any thread.
#ifndef TIERCACHE_RUNTIME_STAGED_READER_H_
#define TIERCACHE_RUNTIME_STAGED_READER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "runtime/staging_pool.h"
#include "tiers/tier.h"

namespace tiercache {

class StagedReader {
 public:
  struct Piece {
    StagingPool::Slot* slot = nullptr;
    uint64_t offset = 0;  // in the stretch
    uint64_t bytes = 0;
    uint64_t index = 0;   // offset / chunk_bytes
  };
  // Re-reads [offset, offset + bytes) into dst, verified against chunk `index`.
  using Reread = std::function<Status(uint64_t offset, unsigned char* dst, uint64_t bytes, uint64_t index)>;

  // Reads extent[0, total_bytes) of `tier`. REQUIRES: 1 <= depth <=
  // staging->slots() (the caller's piece is back before the window is
  // topped up); chunk_bytes <= staging->slot_bytes().
  StagedReader(StagingPool* staging, Tier* tier, Extent extent, uint64_t total_bytes,
               uint64_t chunk_bytes, int depth, const std::vector<uint32_t>* checksums,
               std::vector<uint32_t>* fill, Reread reread);
  ~StagedReader();
  StagedReader(const StagedReader&) = delete;
  StagedReader& operator=(const StagedReader&) = delete;

  bool finished() const { return next_out_ == pieces_; }
  // The next piece, read and checked. After an error the reader is spent:
  // call nothing but the destructor (and Done for pieces already had).
  Result<Piece> Next();
  void Done(const Piece& piece, bool recorded) { staging_->Release(piece.slot, recorded); }

 private:
  struct Flight {
    Piece piece;
    bool complete = false;
    Status status;
  };
  Status Issue();  // starts the read of piece next_in_

  StagingPool* staging_;
  Tier* tier_;
  const Extent extent_;
  const uint64_t total_;
  const uint64_t chunk_;
  const int depth_;
  const std::vector<uint32_t>* checksums_;
  std::vector<uint32_t>* fill_;
  Reread reread_;
  const uint64_t pieces_;
  uint64_t next_in_ = 0;   // next piece to start reading
  uint64_t next_out_ = 0;  // next piece Next() returns

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Flight>> flights_;  // in order; GUARDED_BY(mutex_) for complete/status
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_STAGED_READER_H_
