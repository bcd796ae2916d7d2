// ThreadPoolEngine: the IoEngine that needs nothing from the kernel but
// pread/pwrite. It is the fallback when io_uring is refused and the engine
// chosen by TIERCACHE_NVME_ENGINE=threads.
//
// Each worker takes one request at a time and runs it to completion with
// blocking syscalls, so the number of workers is the queue depth. Completion
// callbacks run on the worker that finished the batch's last request.
//
// Thread safety: as IoEngine.
#ifndef TIERCACHE_TIERS_IO_THREAD_POOL_ENGINE_H_
#define TIERCACHE_TIERS_IO_THREAD_POOL_ENGINE_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tiers/io_engine.h"

namespace tiercache {

class ThreadPoolEngine : public IoEngine {
 public:
  static Result<std::unique_ptr<IoEngine>> Create(const IoEngineOptions& options);
  ~ThreadPoolEngine() override;

 protected:
  void SubmitImpl(std::vector<Operation*> operations) override;

 private:
  ThreadPoolEngine(const IoEngineOptions& options, uint32_t threads);
  void WorkerLoop();

  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<Operation*> queue_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;         // GUARDED_BY(mutex_)
  std::vector<std::thread> workers_;
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_IO_THREAD_POOL_ENGINE_H_
