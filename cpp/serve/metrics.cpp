// Prometheus text rendering of the service counters (see metrics.hpp).
#include "metrics.hpp"

#include <cstdio>
#include <sstream>

namespace serve {

long long Metrics::now_second() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Metrics::request_done(int status, double seconds) {
    std::lock_guard<std::mutex> hold(lock_);
    ++by_status_[status];
    size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    ++buckets_[i];
    latency_sum_ += seconds;
    ++latency_count_;
}

void Metrics::error(const std::string &kind) {
    std::lock_guard<std::mutex> hold(lock_);
    ++errors_[kind];
}

void Metrics::tiles_done(int tiles) {
    std::lock_guard<std::mutex> hold(lock_);
    tiles_ += tiles;
    const long long s = now_second();
    const size_t slot = static_cast<size_t>(s % 10);
    if (recent_second_[slot] != s) {
        recent_second_[slot] = s;
        recent_[slot] = 0;
    }
    recent_[slot] += tiles;
}

std::string Metrics::render() {
    std::lock_guard<std::mutex> hold(lock_);
    std::ostringstream out;
    out << "# HELP hermes_requests_total Restore requests answered, by HTTP status.\n"
        << "# TYPE hermes_requests_total counter\n";
    for (const auto &[status, n] : by_status_) out << "hermes_requests_total{status=\"" << status << "\"} " << n << "\n";
    out << "# HELP hermes_request_seconds Restore request latency, from the request read to the response.\n"
        << "# TYPE hermes_request_seconds histogram\n";
    long long cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += buckets_[i];
        char le[32];
        std::snprintf(le, sizeof le, "%g", kBuckets[i]);
        out << "hermes_request_seconds_bucket{le=\"" << le << "\"} " << cumulative << "\n";
    }
    cumulative += buckets_[kBuckets.size()];
    out << "hermes_request_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
        << "hermes_request_seconds_sum " << latency_sum_ << "\n"
        << "hermes_request_seconds_count " << latency_count_ << "\n";
    out << "# HELP hermes_queue_depth Requests waiting for a worker.\n# TYPE hermes_queue_depth gauge\n"
        << "hermes_queue_depth " << queue_depth.load() << "\n";
    out << "# HELP hermes_in_flight Restore requests being handled (queued or running).\n"
        << "# TYPE hermes_in_flight gauge\nhermes_in_flight " << in_flight.load() << "\n";
    out << "# HELP hermes_tiles_total Tiles computed.\n# TYPE hermes_tiles_total counter\n"
        << "hermes_tiles_total " << tiles_ << "\n";
    const long long s = now_second();
    long long recent = 0;
    for (size_t i = 0; i < recent_.size(); ++i)
        if (s - recent_second_[i] < 10) recent += recent_[i];
    out << "# HELP hermes_tiles_per_second Tiles computed per second over the last 10 seconds.\n"
        << "# TYPE hermes_tiles_per_second gauge\nhermes_tiles_per_second " << static_cast<double>(recent) / 10.0 << "\n";
    out << "# HELP hermes_errors_total Failed requests, by kind.\n# TYPE hermes_errors_total counter\n";
    for (const auto &[kind, n] : errors_) out << "hermes_errors_total{kind=\"" << kind << "\"} " << n << "\n";
    return out.str();
}

}  // namespace serve
