// Crash consistency of the PMEM tier: a writer process committing and
// forgetting blocks is killed (SIGKILL) at a random point, over and over, on
// one file. After every kill the file must reopen, the index must hold
// exactly the blocks whose Commit() returned (less those whose Forget()
// returned), plus at most the one operation in flight, and every block it
// reports must verify its checksum and match byte for byte. A process crash,
// not a power cut: the page cache survives (the recovery tests forge what a
// power cut leaves). TIERCACHE_CRASH_ITERATIONS sets the number of kills
// (default 1000).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "tests/pmem/pmem_test_util.h"
#include "tiers/pmem_tier.h"

namespace tiercache::testing {

// The shared PMEM test header brings the Tier conformance suite along; this
// binary only crashes writers.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TierConformance);

namespace {

struct Message {
  char op;  // 'B' commit begins, 'C' committed, 'f' forget begins, 'F' forgotten
  uint64_t key;
};

uint64_t BytesOf(uint64_t key) { return 1 + key * 997 % 6000; }

int Iterations() {
  const char* text = std::getenv("TIERCACHE_CRASH_ITERATIONS");
  return text != nullptr && *text != '\0' ? std::atoi(text) : 1000;
}

// The writer: forgets the oldest block once 24 are live, commits new ones,
// and says what it is about to do and what it did. Never returns.
[[noreturn]] void Writer(const std::string& path, std::deque<uint64_t> live, uint64_t next_key,
                         int fd) {
  auto tell = [fd](char op, uint64_t key) {
    const Message m{op, key};
    if (write(fd, &m, sizeof(m)) != sizeof(m)) _exit(6);
  };
  auto tier = PmemTier::Open(SmallOptions(path, 4 * kMiB, 64));
  if (!tier.ok()) _exit(2);
  for (uint64_t key = next_key;; ++key) {
    if (live.size() >= 24) {
      tell('f', live.front());
      if (!(*tier)->Forget(live.front()).ok()) _exit(7);
      tell('F', live.front());
      live.pop_front();
    }
    Result<Extent> e = (*tier)->Allocate(BytesOf(key));
    if (!e.ok()) _exit(3);
    std::vector<unsigned char> data = Pattern(e->length, key);
    if (!(*tier)->Write(*e, 0, data.data(), data.size()).ok()) _exit(4);
    tell('B', key);
    if (!(*tier)->Commit(key, *e).ok()) _exit(5);
    tell('C', key);
    live.push_back(key);
  }
}

TEST(PmemCrashTest, RandomKillsLoseAtMostTheOperationInFlight) {
  ScopedTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.File("crash.pmem");
  std::mt19937_64 random(20261201);
  std::deque<uint64_t> live;  // what the file must hold, oldest first
  uint64_t next_key = 1;
  int kills = 0, commits_in_flight = 0, commits_lost = 0, forgets_in_flight = 0;
  uint64_t commits = 0, torn_seen = 0;
  const int iterations = Iterations();
  for (int iteration = 0; iteration < iterations; ++iteration) {
    SCOPED_TRACE("kill " + std::to_string(iteration));
    int fds[2];
    ASSERT_EQ(0, pipe(fds));
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      Writer(path, live, next_key, fds[1]);
    }
    close(fds[1]);
    // Let it commit 0-8 blocks, then kill it somewhere in the next ones.
    const int wait_for = static_cast<int>(random() % 9);
    std::vector<Message> log;
    for (int seen = 0; seen < wait_for;) {
      Message m;
      if (read(fds[0], &m, sizeof(m)) != sizeof(m)) break;
      log.push_back(m);
      seen += m.op == 'C';
    }
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 400));
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(child, waitpid(child, &status, 0));
    for (Message m; read(fds[0], &m, sizeof(m)) == sizeof(m);) log.push_back(m);
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself with " << WEXITSTATUS(status);
    ++kills;

    // Replay the log onto the model; at most one operation is left open.
    uint64_t open_commit = 0, open_forget = 0;  // keys start at 1: 0 is none
    for (const Message& m : log) {
      if (m.op == 'B') open_commit = m.key;
      if (m.op == 'C') open_commit = 0, live.push_back(m.key), ++commits;
      if (m.op == 'f') open_forget = m.key;
      if (m.op == 'F') {
        open_forget = 0;
        ASSERT_EQ(m.key, live.front());
        live.pop_front();
      }
      next_key = std::max(next_key, m.key + 1);
    }
    ASSERT_FALSE(open_commit != 0 && open_forget != 0) << "two operations in flight";

    auto tier = PmemTier::Open(SmallOptions(path, 0));
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    const PmemIndexStats stats = (*tier)->index_stats();
    ASSERT_LE(stats.skipped_torn + stats.skipped_invalid, 1u);
    torn_seen += stats.skipped_torn + stats.skipped_invalid;
    auto verify = [&](uint64_t key) -> bool {  // present and intact, or absent
      Result<Extent> e = (*tier)->Lookup(key);
      if (!e.ok()) {
        EXPECT_EQ(ErrorCode::kNotFound, e.status().code()) << key << ": " << e.status().ToString();
        return false;
      }
      EXPECT_EQ(BytesOf(key), e->length) << key;
      std::vector<unsigned char> got(e->length);
      EXPECT_TRUE((*tier)->Read(*e, 0, got.data(), got.size()).ok());
      EXPECT_TRUE(got == Pattern(e->length, key)) << "block " << key << " altered";
      return true;
    };
    uint64_t present = 0;
    for (uint64_t key : live) {
      if (key == open_forget) continue;
      ASSERT_TRUE(verify(key)) << "committed block " << key << " lost";
      ++present;
    }
    if (open_forget != 0) {
      ++forgets_in_flight;
      if (verify(open_forget)) {
        ++present;
      } else {
        live.erase(std::find(live.begin(), live.end(), open_forget));
      }
    }
    if (open_commit != 0) {
      ++commits_in_flight;
      if (verify(open_commit)) {
        live.push_back(open_commit), ++present;
      } else {
        ++commits_lost;
      }
    }
    // Nothing else is in the index: no block the writer never committed.
    ASSERT_EQ(present, stats.recovered);
    ASSERT_EQ(present, stats.index_used);
  }
  std::printf("[ crash ] %d kills, %llu commits returned and survived; commits in flight at "
              "the kill: %d (lost: %d, survived: %d); forgets in flight: %d; torn entries "
              "skipped at reopen: %llu\n",
              kills, static_cast<unsigned long long>(commits), commits_in_flight, commits_lost,
              commits_in_flight - commits_lost, forgets_in_flight,
              static_cast<unsigned long long>(torn_seen));
  EXPECT_EQ(iterations, kills);
}

}  // namespace
}  // namespace tiercache::testing
