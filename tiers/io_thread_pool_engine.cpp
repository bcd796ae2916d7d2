#include "tiers/io_thread_pool_engine.h"

#include <algorithm>
#include <system_error>
#include <utility>

namespace tiercache {

Result<std::unique_ptr<IoEngine>> ThreadPoolEngine::Create(const IoEngineOptions& options) {
  if (options.queue_depth == 0) {
    return Status::InvalidArgument("I/O engine: queue depth must be at least 1");
  }
  // One blocked worker per transfer in flight; past a few dozen, threads
  // cost more in scheduling than they add in device parallelism.
  const uint32_t threads =
      options.threads != 0 ? options.threads : std::min<uint32_t>(options.queue_depth, 32);
  try {
    return std::unique_ptr<IoEngine>(new ThreadPoolEngine(options, threads));
  } catch (const std::system_error& e) {
    return Status::OutOfMemory(std::string("I/O thread pool: cannot start workers: ") +
                               e.what());
  }
}

ThreadPoolEngine::ThreadPoolEngine(const IoEngineOptions& options, uint32_t threads)
    : IoEngine(IoEngineKind::kThreads, options) {
  workers_.reserve(threads);
  try {
    for (uint32_t i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    throw;
  }
}

ThreadPoolEngine::~ThreadPoolEngine() {
  WaitForIdle();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPoolEngine::SubmitImpl(std::vector<Operation*> operations) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.insert(queue_.end(), operations.begin(), operations.end());
  }
  if (operations.size() == 1) {
    work_cv_.notify_one();
  } else {
    work_cv_.notify_all();
  }
}

void ThreadPoolEngine::WorkerLoop() {
  EnterEngineThread();
  for (;;) {
    Operation* op;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      op = queue_.front();
      queue_.pop_front();
    }
    while (OnTransferDone(*op, TransferSync(*op, NextTransfer(*op))) == Next::kResubmit) {
    }
    Complete(op);
  }
}

}  // namespace tiercache
