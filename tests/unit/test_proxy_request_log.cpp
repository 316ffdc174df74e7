// SPDX-License-Identifier: Apache-2.0
// The request log written behind the request path: write() only queues,
// the log's thread writes in order; flush() and drain() put everything out.
#include "proxy/request_log.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using claudegate::test::ScratchDir;

namespace {

std::vector<json::Json> logged(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<json::Json> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(json::Json::parse(line));
  }
  return lines;
}

} // namespace

TEST_CASE("request log: lines from many threads are written whole, each thread's in order") {
  ScratchDir dir;
  const auto path = dir.path() / "requests.log";
  proxy::RequestLog log;
  REQUIRE(log.open(path));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 250; ++i) {
        log.write({{"thread", t}, {"n", i}});
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  log.flush();
  const auto lines = logged(path);
  REQUIRE(lines.size() == 1000);
  std::vector<int> next(4, 0);
  for (const auto& line : lines) {
    const int t = line["thread"];
    CHECK(line["n"] == next[static_cast<std::size_t>(t)]);
    ++next[static_cast<std::size_t>(t)];
  }
}

TEST_CASE("request log: drain writes what is queued; later lines go out at once") {
  ScratchDir dir;
  const auto path = dir.path() / "requests.log";
  proxy::RequestLog log;
  REQUIRE(log.open(path));
  for (int i = 0; i < 100; ++i) {
    log.write({{"n", i}});
  }
  log.drain();
  CHECK(logged(path).size() == 100);
  log.write({{"n", 100}});
  CHECK(logged(path).size() == 101);
  log.drain(); // idempotent
}
