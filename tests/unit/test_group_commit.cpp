// SPDX-License-Identifier: Apache-2.0
#include "store/group_commit.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using claudegate::Errc;
using claudegate::Result;
using claudegate::store::GroupCommit;

// Runs every body of the batch, as a transaction would, and counts batches.
struct CountingRunner {
  std::atomic<int> batches{0};
  std::atomic<int> running{0};
  std::atomic<int> overlapping{0};
  std::chrono::milliseconds hold{0};

  GroupCommit::Runner runner() {
    return [this](std::span<GroupCommit::Job* const> jobs) {
      if (running.fetch_add(1) != 0) {
        ++overlapping;
      }
      ++batches;
      std::this_thread::sleep_for(hold);
      for (auto* job : jobs) {
        job->result = (*job->body)();
      }
      --running;
    };
  }
};

// `count` threads each run one write returning its own outcome; the results in thread order.
std::vector<Result<void>> run_concurrently(GroupCommit& group, CountingRunner& counting, int count) {
  std::vector<Result<void>> results(static_cast<std::size_t>(count));
  std::vector<std::thread> threads;
  const auto runner = counting.runner();
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      const std::function<Result<void>()> body = [i]() -> Result<void> {
        if (i % 2 == 1) {
          return claudegate::fail(Errc::storage, "odd " + std::to_string(i));
        }
        return {};
      };
      results[static_cast<std::size_t>(i)] = group.run(body, runner);
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  return results;
}

} // namespace

TEST_CASE("a lone write runs at once on the caller's thread, in a batch of its own") {
  GroupCommit group;
  const auto caller = std::this_thread::get_id();
  std::thread::id ran_on;
  const std::function<Result<void>()> body = [&]() -> Result<void> {
    ran_on = std::this_thread::get_id();
    return {};
  };
  const auto result = group.run(body, [](std::span<GroupCommit::Job* const> jobs) {
    REQUIRE(jobs.size() == 1);
    jobs[0]->result = (*jobs[0]->body)();
  });
  CHECK(result.has_value());
  CHECK(ran_on == caller);
  CHECK(group.largest_batch() == 1);
}

TEST_CASE("concurrent writes share batches, one batch at a time, and each caller gets its own result") {
  GroupCommit group;
  CountingRunner counting;
  counting.hold = std::chrono::milliseconds(30); // the first batch is slow: the rest queue up behind it
  const auto results = run_concurrently(group, counting, 16);
  for (std::size_t i = 0; i < results.size(); ++i) {
    CAPTURE(i);
    if (i % 2 == 1) {
      REQUIRE_FALSE(results[i].has_value());
      CHECK(results[i].error().message == "odd " + std::to_string(i));
    } else {
      CHECK(results[i].has_value());
    }
  }
  CHECK(counting.overlapping == 0);
  CHECK(group.largest_batch() > 1);
  CHECK(counting.batches < 16);
}

TEST_CASE("a batch holds at most max_batch writes") {
  GroupCommit group(3);
  CountingRunner counting;
  counting.hold = std::chrono::milliseconds(20);
  const auto results = run_concurrently(group, counting, 12);
  CHECK(results.size() == 12);
  CHECK(group.largest_batch() <= 3);
  CHECK(counting.batches >= 4);
}

TEST_CASE("a runner that throws fails its batch's other writes and leaves the group usable") {
  GroupCommit group;
  std::atomic<int> calls{0};
  // Batch 1 (thread 0 alone) is slow, so threads 1–5 queue and form batch 2, which throws.
  const GroupCommit::Runner runner = [&](std::span<GroupCommit::Job* const> jobs) {
    const int call = ++calls;
    if (call == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (call == 2) {
      throw std::runtime_error("disk on fire");
    }
    for (auto* job : jobs) {
      job->result = (*job->body)();
    }
  };
  const std::function<Result<void>()> ok = []() -> Result<void> { return {}; };
  std::atomic<int> thrown{0};
  std::atomic<int> abandoned{0};
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      try {
        const auto result = group.run(ok, runner);
        ++(result ? succeeded : abandoned);
        if (!result) {
          CHECK(result.error().message.find("abandoned") != std::string::npos);
        }
      } catch (const std::runtime_error&) {
        ++thrown;
      }
    });
    if (i == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20)); // thread 0 leads batch 1
    }
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(thrown == 1);
  CHECK(abandoned >= 1);
  CHECK(thrown + abandoned + succeeded == 6);
  CHECK(group.run(ok, runner).has_value());
}
