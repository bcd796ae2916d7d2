#include "runtime/staged_reader.h"

#include <algorithm>
#include <utility>

#include "runtime/checksum.h"

namespace tiercache {

StagedReader::StagedReader(StagingPool* staging, Tier* tier, Extent extent, uint64_t total_bytes,
                           uint64_t chunk_bytes, int depth, const std::vector<uint32_t>* checksums,
                           std::vector<uint32_t>* fill, Reread reread)
    : staging_(staging),
      tier_(tier),
      extent_(extent),
      total_(total_bytes),
      chunk_(chunk_bytes),
      depth_(std::max(1, depth)),
      checksums_(checksums != nullptr && !checksums->empty() ? checksums : nullptr),
      fill_(checksums_ == nullptr ? fill : nullptr),
      reread_(std::move(reread)),
      pieces_(chunk_bytes == 0 ? 0 : (total_bytes + chunk_bytes - 1) / chunk_bytes) {
  if (fill_ != nullptr) fill_->clear();
}

StagedReader::~StagedReader() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (const std::shared_ptr<Flight>& f : flights_) {
    cv_.wait(lock, [&] { return f->complete; });
    staging_->Release(f->piece.slot, false);
  }
  flights_.clear();
}

Status StagedReader::Issue() {
  Result<StagingPool::Slot*> slot = staging_->Acquire();
  if (!slot.ok()) return slot.status();
  auto flight = std::make_shared<Flight>();
  flight->piece.slot = *slot;
  flight->piece.index = next_in_;
  flight->piece.offset = next_in_ * chunk_;
  flight->piece.bytes = std::min(chunk_, total_ - flight->piece.offset);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    flights_.push_back(flight);
  }
  ++next_in_;
  // The completion may run inline, before ReadAsync returns.
  tier_->ReadAsync(extent_, flight->piece.offset, flight->piece.slot->data, flight->piece.bytes,
                   [this, flight](Status status) {
                     std::lock_guard<std::mutex> lock(mutex_);
                     flight->status = std::move(status);
                     flight->complete = true;
                     cv_.notify_all();
                   });
  return Status::Ok();
}

Result<StagedReader::Piece> StagedReader::Next() {
  if (finished()) return Status::Internal("staged read: no pieces left");
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (static_cast<int>(flights_.size()) >= depth_) break;
    }
    if (next_in_ == pieces_) break;
    TC_RETURN_IF_ERROR(Issue());
  }
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    flight = flights_.front();
    cv_.wait(lock, [&] { return flight->complete; });
    flights_.pop_front();
  }
  Piece piece = flight->piece;
  Status status = flight->status;
  if (status.ok() && checksums_ != nullptr && piece.index < checksums_->size() &&
      ChecksumBytes(piece.slot->data, piece.bytes) != (*checksums_)[piece.index]) {
    status = Status::Corruption(tier_->name() + ": checksum mismatch in chunk " + std::to_string(piece.index) +
                                " at offset " + std::to_string(piece.offset));
  }
  if (!status.ok()) status = reread_(piece.offset, piece.slot->data, piece.bytes, piece.index);
  if (!status.ok()) {
    staging_->Release(piece.slot, false);
    next_out_ = pieces_;  // spent
    return status;
  }
  if (fill_ != nullptr) fill_->push_back(ChecksumBytes(piece.slot->data, piece.bytes));
  ++next_out_;
  return piece;
}

}  // namespace tiercache
