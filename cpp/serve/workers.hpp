// A fixed pool of workers over one loaded model, each with its own libhermes session,
// fed by a bounded queue: submit() refuses (returns nullptr) when the queue is full, so
// memory stays bounded under overload and the caller answers 503.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hermes/hermes.hpp"

namespace serve {

struct Job {
    // input
    std::string body;
    std::string format;  // "" = the input's
    int tile_h = 256, tile_w = 256;
    // output, under `lock`
    std::mutex lock;
    std::condition_variable done_cv;
    bool done = false;
    bool cancelled = false;  // the requester gave up (timeout): skip it if not started
    hermes_status status = HERMES_OK;
    std::string error;
    std::string image;
    hermes_stats stats{};
    std::chrono::steady_clock::time_point queued, started;
};

class WorkerPool {
public:
    // one session per worker; each is warmed up on a tile-sized image before start()
    WorkerPool(hermes::Model &model, int workers, size_t capacity, const hermes_restore_params &params);
    ~WorkerPool();
    // false when the queue is full
    bool submit(const std::shared_ptr<Job> &job);
    size_t depth();
    // finish every queued job, then stop the workers
    void drain();
    // called with the tiles of each finished job (metrics)
    std::function<void(int)> on_tiles;

private:
    void run(size_t index);
    std::vector<std::unique_ptr<hermes::Session>> sessions_;
    std::vector<std::thread> threads_;
    std::mutex lock_;
    std::condition_variable ready_;
    std::deque<std::shared_ptr<Job>> queue_;
    size_t capacity_;
    bool stopping_ = false;
    hermes_restore_params params_;
};

}  // namespace serve
