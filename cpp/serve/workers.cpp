// The worker pool of hermes-serve (see workers.hpp).
#include "workers.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace serve {

WorkerPool::WorkerPool(hermes::Model &model, int workers, size_t capacity, const hermes_restore_params &params)
    : capacity_(capacity), params_(params) {
    const hermes_model_info info = model.info();
    for (int i = 0; i < workers; ++i) {
        sessions_.push_back(std::make_unique<hermes::Session>(model, params));
        // warm-up: one tile of the default size compiles the graph for that shape
        const int side = params.tile_height;
        std::vector<uint8_t> in(static_cast<size_t>(side) * side * 3);
        for (size_t k = 0; k < in.size(); ++k) in[k] = static_cast<uint8_t>((k * 7) % 251);
        std::vector<uint8_t> out(in.size() * static_cast<size_t>(info.scale * info.scale));
        hermes_image src{side, side, 3, HERMES_SAMPLE_U8, 0, in.data()};
        hermes_image dst{side * info.scale, side * info.scale, 3, HERMES_SAMPLE_U8, 0, out.data()};
        sessions_.back()->restore(src, dst);
    }
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { run(static_cast<size_t>(i)); });
}

WorkerPool::~WorkerPool() { drain(); }

bool WorkerPool::submit(const std::shared_ptr<Job> &job) {
    {
        std::lock_guard<std::mutex> hold(lock_);
        if (stopping_ || queue_.size() >= capacity_) return false;
        job->queued = std::chrono::steady_clock::now();
        queue_.push_back(job);
    }
    ready_.notify_one();
    return true;
}

size_t WorkerPool::depth() {
    std::lock_guard<std::mutex> hold(lock_);
    return queue_.size();
}

void WorkerPool::drain() {
    {
        std::lock_guard<std::mutex> hold(lock_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto &t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

void WorkerPool::run(size_t index) {
    hermes::Session &session = *sessions_[index];
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::unique_lock<std::mutex> hold(lock_);
            ready_.wait(hold, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and nothing left to do
            job = queue_.front();
            queue_.pop_front();
        }
        {
            std::lock_guard<std::mutex> hold(job->lock);
            if (job->cancelled) continue;
            job->started = std::chrono::steady_clock::now();
        }
        hermes_restore_params p = params_;
        p.tile_height = job->tile_h;
        p.tile_width = job->tile_w;
        hermes_status st = HERMES_OK;
        std::string image, error;
        hermes_stats stats = hermes_stats_init();
        try {
            session.set_params(p);
            image = session.restore_buffer(job->body.data(), job->body.size(), job->format);
            stats = session.last_stats();
        } catch (const hermes::Exception &exc) {
            st = exc.status();
            error = exc.what();
        }
        {
            std::lock_guard<std::mutex> hold(job->lock);
            job->status = st;
            if (st == HERMES_OK) {
                job->image = std::move(image);
                job->stats = stats;
            } else {
                job->error = std::move(error);
            }
            job->done = true;
            job->body.clear();
            job->body.shrink_to_fit();
        }
        job->done_cv.notify_all();
        if (st == HERMES_OK && on_tiles) on_tiles(stats.tiles);
    }
}

}  // namespace serve
