// hermes-serve: an HTTP/1.1 inference service on libhermes (cpp-httplib, nlohmann-json).
//
//   POST /v1/restore   image in the body (PNG, JPEG, WebP, TIFF); ?format=png|jpg|webp|tif,
//                      ?tile=N|HxW -> the restored image, X-Hermes-* headers
//   GET  /healthz      the process is up          GET /readyz  the model is loaded and warm
//   GET  /metrics      Prometheus text             GET /v1/model the ModelSpec (+ backend)
//
// A fixed pool of workers (one libhermes session each) over one loaded model, behind a
// bounded queue: a full queue answers 503 with Retry-After at once, so memory is bounded
// under overload. Every error is one JSON object {"error": kind, "detail": one line}.
// The port opens at once; /readyz (and every model route) answers 503 not_ready until the
// model is loaded and every worker warm. Every error answer is also one log line.
// SIGTERM/SIGINT: stop accepting, let in-flight requests finish (within --drain), exit 0.
// The design follows llama.cpp's server (tools/server): fixed workers, a task queue,
// /health and /metrics, JSON errors.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "config.hpp"
#include "hermes/hermes.hpp"
#include "metrics.hpp"
#include "upload.hpp"
#include "workers.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_ready{false};
std::atomic<bool> g_stopping{false};

const char *reason_kind(int status) {
    switch (status) {
        case 400: return "bad_request";
        case 404: return "not_found";
        case 405: return "method_not_allowed";
        case 413: return "body_too_large";
        case 414: return "bad_request";
        case 415: return "unsupported_format";
        case 431: return "bad_request";
        case 503: return "overloaded";
        case 504: return "timeout";
        default: return status >= 500 ? "internal" : "bad_request";
    }
}

void json_error(httplib::Response &res, int status, const std::string &kind, const std::string &detail) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", kind}, {"detail", detail}}.dump(), "application/json");
}

// an error answer and its one log line: "hermes-serve: POST /v1/restore 400 bad_request: ..."
void reply_error(const httplib::Request &req, httplib::Response &res, int status, const std::string &kind,
                 const std::string &detail) {
    json_error(res, status, kind, detail);
    std::fprintf(stderr, "hermes-serve: %s %s %d %s: %s\n", req.method.c_str(), req.path.substr(0, 200).c_str(),
                 status, kind.c_str(), detail.c_str());
}

std::string exception_text(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const std::exception &exc) {
        return exc.what();
    } catch (...) {
    }
    return "an exception that is not a std::exception";
}

std::string base_name(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char *content_type(const std::string &image) {
    if (image.size() >= 4 && static_cast<unsigned char>(image[0]) == 0x89 && image.compare(1, 3, "PNG") == 0) return "image/png";
    if (image.size() >= 2 && static_cast<unsigned char>(image[0]) == 0xFF && static_cast<unsigned char>(image[1]) == 0xD8)
        return "image/jpeg";
    if (image.size() >= 12 && image.compare(8, 4, "WEBP") == 0) return "image/webp";
    return "image/tiff";
}

// ?tile=N or HxW; false with `why` on a bad value
bool parse_tile(const std::string &text, int &h, int &w, std::string &why) {
    auto number = [](const std::string &t, int &v) {
        if (t.empty() || t.size() > 5 || t.find_first_not_of("0123456789") != std::string::npos) return false;
        v = std::stoi(t);
        return v >= 16 && v <= 8192;
    };
    const size_t x = text.find('x');
    const bool ok = x == std::string::npos ? number(text, h) && (w = h, true)
                                           : number(text.substr(0, x), h) && number(text.substr(x + 1), w);
    if (!ok) why = "tile takes N or HxW with sides from 16 to 8192, got '" + text + "'";
    return ok;
}

// what a request came to: its status and, for an error, its kind (hermes_errors_total)
struct Answer {
    int status = 200;
    std::string kind;
};

Answer fail(const httplib::Request &req, httplib::Response &res, int status, const std::string &kind,
            const std::string &detail) {
    reply_error(req, res, status, kind, detail);
    return {status, kind};
}

// what the routes share; `pool`, `model_json` and the names are set once, before g_ready
struct Service {
    serve::Config cfg;
    serve::Metrics metrics;
    std::unique_ptr<hermes::Model> model;
    std::unique_ptr<serve::WorkerPool> pool;
    nlohmann::json model_json;
    std::string model_name, backend_name;
};

// queue the job, wait for it, answer
Answer run_job(Service &svc, const std::shared_ptr<serve::Job> &job, Clock::time_point t0, const httplib::Request &req,
               httplib::Response &res) {
    const serve::Config &cfg = svc.cfg;
    if (!svc.pool->submit(job)) {
        res.set_header("Retry-After", "1");
        return fail(req, res, 503, "overloaded",
                    "the request queue is full (" + std::to_string(cfg.queue) + " waiting); retry after a second");
    }
    const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.timeout));
    std::unique_lock<std::mutex> hold(job->lock);
    if (!job->done_cv.wait_until(hold, deadline, [&] { return job->done; })) {
        job->cancelled = true;  // a worker skips it if it has not started
        return fail(req, res, 504, "timeout", "the request took longer than " + std::to_string(cfg.timeout) +
                                                  " s (queue and compute); raise --timeout or send smaller images");
    }
    if (job->status != HERMES_OK) {
        int status = 500;
        std::string kind = "internal";
        switch (job->status) {
            case HERMES_ERR_IMAGE: status = 400, kind = "decode_failed"; break;
            case HERMES_ERR_FORMAT: status = 415, kind = "unsupported_format"; break;
            case HERMES_ERR_TOO_LARGE: status = 413, kind = "too_many_pixels"; break;
            case HERMES_ERR_INVALID_ARGUMENT: status = 400, kind = "bad_request"; break;
            case HERMES_ERR_OUT_OF_MEMORY: status = 503, kind = "out_of_memory"; break;
            default: break;
        }
        if (status == 503) res.set_header("Retry-After", "5");
        return fail(req, res, status, kind, job->error);
    }
    const double queued = std::chrono::duration<double>(job->started - job->queued).count();
    res.set_header("X-Hermes-Model", svc.model_name);
    res.set_header("X-Hermes-Backend", svc.backend_name);
    res.set_header("X-Hermes-Tiles", std::to_string(job->stats.tiles));
    res.set_header("X-Hermes-Grid", std::to_string(job->stats.grid_rows) + "x" + std::to_string(job->stats.grid_cols));
    res.set_header("X-Hermes-Compute-Seconds", std::to_string(job->stats.compute_seconds));
    res.set_header("X-Hermes-Queue-Seconds", std::to_string(queued));
    const char *type = content_type(job->image);
    res.set_content(std::move(job->image), type);
    return {};
}

// POST /v1/restore: the whole upload is read first (the connection stays in step whatever
// the answer), then the state, the query, the queue
Answer restore(Service &svc, const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader,
               Clock::time_point t0) {
    auto job = std::make_shared<serve::Job>();
    const serve::UploadError bad = serve::read_upload(req, res, reader, job->body, svc.cfg.max_body);
    if (bad.status) return fail(req, res, bad.status, bad.kind, bad.detail);
    if (g_stopping)  // arrived as SIGTERM landed: not queued, the drain is for what already is
        return fail(req, res, 503, "shutting_down", "the server is shutting down; retry on another instance");
    if (!g_ready) {
        res.set_header("Retry-After", "1");
        return fail(req, res, 503, "not_ready", "the model is still loading; retry once GET /readyz answers 200");
    }
    job->tile_h = job->tile_w = svc.cfg.tile;
    if (req.has_param("tile")) {
        std::string why;
        if (!parse_tile(req.get_param_value("tile"), job->tile_h, job->tile_w, why))
            return fail(req, res, 400, "bad_request", why);
    }
    if (req.has_param("format")) {
        job->format = req.get_param_value("format");
        if (job->format == "jpeg") job->format = "jpg";
        if (job->format == "tiff") job->format = "tif";
        if (job->format != "png" && job->format != "jpg" && job->format != "webp" && job->format != "tif")
            return fail(req, res, 400, "bad_request", "format takes png, jpg, webp or tif, got '" + job->format + "'");
    }
    return run_job(svc, job, t0, req, res);
}

void add_routes(httplib::Server &server, Service &svc) {
    server.Get("/healthz", [](const httplib::Request &, httplib::Response &res) {
        res.set_content(R"({"status": "ok"})", "application/json");
    });
    server.Get("/readyz", [](const httplib::Request &, httplib::Response &res) {
        if (g_ready && !g_stopping) res.set_content(R"({"status": "ready"})", "application/json");
        else json_error(res, 503, g_stopping ? "shutting_down" : "not_ready",
                        g_stopping ? "the server is shutting down" : "the model is still loading and warming up");
    });
    server.Get("/metrics", [&svc](const httplib::Request &, httplib::Response &res) {
        svc.metrics.queue_depth = g_ready ? static_cast<int>(svc.pool->depth()) : 0;
        res.set_content(svc.metrics.render(), "text/plain; version=0.0.4");
    });
    server.Get("/v1/model", [&svc](const httplib::Request &, httplib::Response &res) {
        if (g_ready) res.set_content(svc.model_json.dump(), "application/json");
        else json_error(res, 503, "not_ready", "the model is still loading; retry once GET /readyz answers 200");
    });
    server.Get("/v1/restore", [](const httplib::Request &req, httplib::Response &res) {
        reply_error(req, res, 405, "method_not_allowed", "use POST /v1/restore with the image as the body");
    });
    // a content reader takes the raw body whatever its Content-Type (httplib would parse an
    // application/x-www-form-urlencoded body - curl's default - as a form, up to 8 KiB);
    // a multipart/form-data body goes through httplib's multipart parser
    server.Post("/v1/restore", [&svc](const httplib::Request &req, httplib::Response &res,
                                      const httplib::ContentReader &reader) {
        const auto t0 = Clock::now();
        svc.metrics.in_flight++;
        Answer answer;
        try {
            answer = restore(svc, req, res, reader, t0);
        } catch (...) {  // counted and logged here: the request is finished whatever was thrown
            answer = fail(req, res, 500, "internal", "unexpected error (" + exception_text(std::current_exception()) +
                                                         "); please report this line");
            res.set_header("Connection", "close");  // part of the body may be unread
        }
        svc.metrics.request_done(answer.status, std::chrono::duration<double>(Clock::now() - t0).count());
        if (!answer.kind.empty()) svc.metrics.error(answer.kind);
        svc.metrics.in_flight--;
    });
    // before any of the body is read: a Content-Length over --max-body gets its 413 at once
    // (httplib would first read and drop it all); no Content-Length and no chunked
    // Transfer-Encoding means no body (RFC 9112 6.3; httplib would wait for the close)
    server.set_pre_routing_handler([&svc](const httplib::Request &req, httplib::Response &res) {
        if (req.method != "POST") return httplib::Server::HandlerResponse::Unhandled;
        auto refuse = [&](int status, const std::string &kind, const std::string &detail) {
            reply_error(req, res, status, kind, detail);
            svc.metrics.request_done(status, 0.0);
            svc.metrics.error(kind);
            return httplib::Server::HandlerResponse::Handled;
        };
        if (!req.has_header("Content-Length")) {
            if (req.path != "/v1/restore" || req.has_header("Transfer-Encoding"))
                return httplib::Server::HandlerResponse::Unhandled;
            return refuse(400, "bad_request", serve::kNoBody);
        }
        const std::string text = req.get_header_value("Content-Length");
        const bool digits = !text.empty() && text.size() <= 19 && text.find_first_not_of("0123456789") == std::string::npos;
        if (!digits) return refuse(400, "bad_request", "malformed Content-Length '" + text.substr(0, 40) + "'");
        if (std::stoull(text) > static_cast<unsigned long long>(svc.cfg.max_body))
            return refuse(413, "body_too_large", "the request body of " + text + " bytes is over " +
                                                     std::to_string(svc.cfg.max_body) + " (--max-body); send a smaller image");
        return httplib::Server::HandlerResponse::Unhandled;
    });
    // errors httplib produces itself (malformed requests, too large bodies, unknown paths)
    server.set_error_handler([&svc](const httplib::Request &req, httplib::Response &res) {
        if (!res.body.empty()) return;
        const std::string kind = reason_kind(res.status);
        std::string detail = "HTTP " + std::to_string(res.status);
        if (res.status == 404) detail = "no endpoint " + req.method + " " + req.path + "; see GET /v1/model, POST /v1/restore";
        if (res.status == 413) detail = "the request body is over the limit (--max-body); send a smaller image";
        if (res.status == 400) detail = "malformed HTTP request";
        reply_error(req, res, res.status, kind, detail);
        if (req.path == "/v1/restore") svc.metrics.request_done(res.status, 0.0);
        if (req.path == "/v1/restore" || res.status != 404) svc.metrics.error(kind);
    });
    // the other routes (POST /v1/restore catches its own)
    server.set_exception_handler([&svc](const httplib::Request &req, httplib::Response &res, std::exception_ptr error) {
        reply_error(req, res, 500, "internal", "unexpected error (" + exception_text(error) + "); please report this line");
        svc.metrics.error("internal");
    });
}

// the model and a warm pool; false after one line on stderr
bool load(Service &svc) {
    const serve::Config &cfg = svc.cfg;
    hermes_restore_params defaults = hermes_restore_default_params();
    defaults.tile_height = defaults.tile_width = cfg.tile;
    defaults.max_pixels = cfg.max_pixels;
    try {
        hermes_model_params mp = hermes_model_default_params();
        mp.backend = cfg.backend == "openvino" ? HERMES_BACKEND_OPENVINO
                     : cfg.backend == "tensorrt" ? HERMES_BACKEND_TENSORRT : HERMES_BACKEND_AUTO;
        mp.precision = cfg.precision == "bf16" ? HERMES_PRECISION_BF16 : HERMES_PRECISION_F32;
        mp.threads = cfg.threads;
        mp.streams = cfg.workers;
        svc.model = std::make_unique<hermes::Model>(cfg.model, mp);
        svc.pool = std::make_unique<serve::WorkerPool>(*svc.model, cfg.workers, static_cast<size_t>(cfg.queue), defaults);
    } catch (const hermes::Exception &exc) {
        std::fprintf(stderr, "hermes-serve: %s\n", exc.what());
        return false;
    }
    svc.pool->on_tiles = [&svc](int tiles) { svc.metrics.tiles_done(tiles); };
    svc.model_json = nlohmann::json::parse(svc.model->spec_json());
    svc.model_json["backend"] = svc.model->backend_name();
    svc.model_name = base_name(cfg.model);
    svc.backend_name = svc.model->backend_name();
    return true;
}

}  // namespace

int main(int argc, char **argv) {
    Service svc;
    serve::Config &cfg = svc.cfg;
    try {
        cfg = serve::parse_config(std::vector<std::string>(argv + 1, argv + argc), [](const char *n) -> const char * {
            return std::getenv(n);
        });
    } catch (const serve::UsageError &exc) {
        if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
            std::fputs(serve::kUsage, stdout);
            return 0;
        }
        std::fprintf(stderr, "hermes-serve: %s; see hermes-serve --help\n", exc.what());
        return 2;
    }

    // signals go to one thread (sigwait), never interrupt the workers; one that comes
    // while the model loads waits for the watcher, started once it is loaded
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    httplib::Server server;
    server.set_tcp_nodelay(true);  // without it loopback latency was about 60x worse
    server.set_payload_max_length(static_cast<size_t>(cfg.max_body));
    server.set_read_timeout(std::chrono::seconds(30));
    server.set_keep_alive_max_count(1000);
    // HTTP threads: enough for the workers, a full queue and quick 503s for the rest
    const int http_threads = cfg.workers + cfg.queue + 8;
    server.new_task_queue = [http_threads] { return new httplib::ThreadPool(static_cast<size_t>(http_threads)); };
    add_routes(server, svc);

    // the port opens before the model loads: probes get 503 not_ready, not a refusal
    int port = cfg.port;
    if (port == 0) port = server.bind_to_any_port(cfg.host);
    else if (!server.bind_to_port(cfg.host, port)) port = -1;
    if (port < 0) {
        std::fprintf(stderr, "hermes-serve: cannot listen on %s:%d (in use or not allowed); choose another --port\n",
                     cfg.host.c_str(), cfg.port);
        return 1;
    }
    std::atomic<bool> listen_ended{false};
    std::thread http([&] {
        server.listen_after_bind();  // returns after stop(), once the HTTP threads are done
        listen_ended = true;
    });
    while (!server.is_running() && !listen_ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!load(svc)) {
        server.stop();
        http.join();
        return 1;
    }

    std::thread watcher([&] {
        int sig = 0;
        sigwait(&signals, &sig);
        g_stopping = true;
        std::fprintf(stderr, "hermes-serve: %s: finishing %d in-flight requests (at most %.0f s)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", svc.metrics.in_flight.load(), cfg.drain);
        std::thread([&cfg] {  // the drain deadline
            std::this_thread::sleep_for(std::chrono::duration<double>(cfg.drain));
            std::fprintf(stderr, "hermes-serve: drain deadline passed; exiting with requests unfinished\n");
            std::_Exit(1);
        }).detach();
        server.stop();
    });
    g_ready = true;
    std::fprintf(stderr, "hermes-serve: listening on http://%s:%d (%s on %s, %d workers x %d threads, queue %d)\n",
                 cfg.host.c_str(), port, svc.model_name.c_str(), svc.backend_name.c_str(), cfg.workers, cfg.threads,
                 cfg.queue);
    http.join();
    svc.pool->drain();
    const bool failed = !g_stopping;
    if (failed) {  // listen ended without a signal
        std::fprintf(stderr, "hermes-serve: the listening socket failed\n");
        pthread_kill(watcher.native_handle(), SIGTERM);
    }
    watcher.join();
    const int unfinished = svc.metrics.in_flight.load();
    if (unfinished) std::fprintf(stderr, "hermes-serve: stopped with %d requests unfinished\n", unfinished);
    else std::fprintf(stderr, "hermes-serve: stopped\n");
    return failed ? 1 : 0;
}
