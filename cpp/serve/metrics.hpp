// Counters of hermes-serve, rendered in the Prometheus text format (version 0.0.4):
// requests by status, a latency histogram, queue depth, in-flight requests, tiles
// (total and per second over the last 10 s) and errors by kind. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace serve {

class Metrics {
public:
    void request_done(int status, double seconds);
    void error(const std::string &kind);
    void tiles_done(int tiles);
    std::atomic<int> queue_depth{0};
    std::atomic<int> in_flight{0};
    std::string render();

private:
    static constexpr std::array<double, 13> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    std::mutex lock_;
    std::map<int, long long> by_status_;
    std::map<std::string, long long> errors_;
    std::array<long long, kBuckets.size() + 1> buckets_{};
    double latency_sum_ = 0.0;
    long long latency_count_ = 0;
    long long tiles_ = 0;
    // tiles per second: one slot per second of the last 10
    std::array<long long, 10> recent_{};
    std::array<long long, 10> recent_second_{};
    static long long now_second();
};

}  // namespace serve
