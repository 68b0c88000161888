// hermes-restore: restore image files with libhermes from the command line, and print
// the library's tile grid and blend weights (used by the tests that compare the C++
// runtime with the Python one, and by benchmarks/bench_cpp.py).
//
//   hermes-restore MODEL IN OUT [--tile HxW] [--overlap N] [--batch N] [--context-size N]
//                  [--precision f32|bf16] [--threads N] [--repeat N] [--in-memory | --buffer]
//   hermes-restore --grid < cases.json     (one JSON case per line -> one JSON line each)
//
// Exit status: 0 done, 1 the library refused (one line on stderr), 2 usage error.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <vips/vips8>

#include "error.hpp"
#include "grid.hpp"
#include "hermes/hermes.hpp"

namespace {

int usage(const std::string &why) {
    std::fprintf(stderr, "hermes-restore: %s; run hermes-restore --help\n", why.c_str());
    return 2;
}

const char *kHelp =
    "usage: hermes-restore MODEL IN OUT [--tile HxW] [--overlap N] [--batch N] [--context-size N]\n"
    "                      [--precision f32|bf16] [--threads N] [--repeat N] [--in-memory | --buffer]\n"
    "       hermes-restore --grid   (JSON cases on stdin, one per line)\n"
    "MODEL is model.onnx (OpenVINO, CPU) or model.engine (TensorRT). Prints one JSON line of\n"
    "figures per run; --repeat N restores N times (for timing); --in-memory decodes IN once and\n"
    "times the in-memory API (hermes_restore) instead of the file API, then writes OUT; --buffer\n"
    "reads IN's bytes once and times the encoded-buffer API (hermes_restore_buffer: decode,\n"
    "restore, encode in memory, as hermes-serve does).\n";

bool parse_int(const std::string &text, int &out) {
    try {
        size_t used = 0;
        const long v = std::stol(text, &used);
        if (used != text.size() || v < -1 || v > 1 << 30) return false;
        out = static_cast<int>(v);
        return true;
    } catch (...) {
        return false;
    }
}

std::vector<uint32_t> bits(const std::vector<float> &v) {
    std::vector<uint32_t> out(v.size());
    std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
    return out;
}

// One case: {"height","width","tile":[h,w],"overlap","scale","size_multiple"} -> the plan
// (what make_plan does with a dynamic-tile spec) with weights as float32 bit patterns.
int grid() {
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        nlohmann::json out;
        try {
            const auto c = nlohmann::json::parse(line);
            hermes::Spec spec;
            spec.scale = c.at("scale");
            spec.size_multiple = c.at("size_multiple");
            spec.tile_overlap = c.at("overlap");
            hermes::TileRequest req;
            req.tile_h = c.at("tile")[0];
            req.tile_w = c.at("tile")[1];
            req.overlap = c.at("overlap");
            const hermes::TilePlan p = hermes::make_plan(spec, c.at("height"), c.at("width"), req);
            out["ys"] = p.ys;
            out["xs"] = p.xs;
            out["tile"] = {p.tile_h, p.tile_w};
            std::vector<std::vector<uint32_t>> rows, cols;
            for (size_t r = 0; r < p.ys.size(); ++r) rows.push_back(bits(p.row_profile(static_cast<int>(r))));
            for (size_t k = 0; k < p.xs.size(); ++k) cols.push_back(bits(p.col_profile(static_cast<int>(k))));
            out["rows"] = rows;
            out["cols"] = cols;
        } catch (const hermes::Error &exc) {
            out["error"] = exc.what();
        } catch (const std::exception &exc) {
            std::fprintf(stderr, "hermes-restore --grid: bad case (%s)\n", exc.what());
            return 2;
        }
        std::cout << out.dump() << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    if (!args.empty() && args[0] == "--grid") return grid();
    std::vector<std::string> positional;
    hermes_model_params mp = hermes_model_default_params();
    hermes_restore_params rp = hermes_restore_default_params();
    int repeat = 1;
    bool in_memory = false, buffer = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a.rfind("--", 0) != 0) {
            positional.push_back(a);
            continue;
        }
        if (a == "--in-memory") {
            in_memory = true;
            continue;
        }
        if (a == "--buffer") {
            buffer = true;
            continue;
        }
        if (i + 1 >= args.size()) return usage(a + " needs a value");
        const std::string v = args[++i];
        int n = 0;
        if (a == "--tile") {
            const size_t x = v.find('x');
            int h = 0, w = 0;
            if (x == std::string::npos) {
                if (!parse_int(v, h) || h < 1) return usage("--tile takes HxW or N, got '" + v + "'");
                w = h;
            } else if (!parse_int(v.substr(0, x), h) || !parse_int(v.substr(x + 1), w) || h < 1 || w < 1) {
                return usage("--tile takes HxW or N, got '" + v + "'");
            }
            rp.tile_height = h;
            rp.tile_width = w;
        } else if (a == "--precision") {
            if (v == "f32") mp.precision = HERMES_PRECISION_F32;
            else if (v == "bf16") mp.precision = HERMES_PRECISION_BF16;
            else return usage("--precision takes f32 or bf16, got '" + v + "'");
        } else if (!parse_int(v, n)) {
            return usage(a + " takes a whole number, got '" + v + "'");
        } else if (a == "--overlap") rp.overlap = n;
        else if (a == "--batch") rp.batch = n;
        else if (a == "--context-size") rp.context_size = n;
        else if (a == "--threads") mp.threads = n;
        else if (a == "--repeat") repeat = n;
        else return usage("unknown option " + a);
    }
    if (positional.size() != 3) return usage("expected MODEL IN OUT");
    if (repeat < 1) return usage("--repeat must be at least 1");
    if (in_memory && buffer) return usage("--in-memory and --buffer exclude each other");
    try {
        const auto t0 = std::chrono::steady_clock::now();
        hermes::Model model(positional[0], mp);
        hermes::Session session(model, rp);
        const double load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::vector<uint8_t> pixels, restored;
        hermes_image in{}, out{};
        if (in_memory) {  // decode once, outside the timed calls
            if (VIPS_INIT("hermes-restore")) return usage("libvips did not start");
            vips::VImage im = vips::VImage::new_from_file(positional[1].c_str());
            if (im.format() != VIPS_FORMAT_UCHAR) return usage("--in-memory takes 8-bit images");
            size_t n = 0;
            void *buf = im.write_to_memory(&n);
            pixels.assign(static_cast<uint8_t *>(buf), static_cast<uint8_t *>(buf) + n);
            g_free(buf);
            in = hermes_image{im.width(), im.height(), im.bands(), HERMES_SAMPLE_U8, 0, pixels.data()};
            const auto [ow, oh] = session.output_size(in.width, in.height);
            restored.resize(static_cast<size_t>(ow) * oh * in.channels);
            out = hermes_image{ow, oh, in.channels, HERMES_SAMPLE_U8, 0, restored.data()};
        }
        std::string encoded, result;
        if (buffer) {
            std::ifstream f(positional[1], std::ios::binary);
            if (!f) return usage("cannot read " + positional[1]);
            encoded.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        }
        for (int r = 0; r < repeat; ++r) {
            if (in_memory) session.restore(in, out);
            else if (buffer) result = session.restore_buffer(encoded.data(), encoded.size());
            else session.restore_file(positional[1], positional[2]);
            const hermes_stats s = session.last_stats();
            nlohmann::json line{{"backend", model.backend_name()}, {"tiles", s.tiles},
                               {"grid", {s.grid_rows, s.grid_cols}}, {"tile", {s.tile_height, s.tile_width}},
                               {"overlap", s.overlap}, {"compute_seconds", s.compute_seconds},
                               {"context_seconds", s.context_seconds}, {"wall_seconds", s.wall_seconds},
                               {"load_seconds", load}};
            std::cout << line.dump() << std::endl;
        }
        if (buffer) {
            std::ofstream f(positional[2], std::ios::binary);
            f.write(result.data(), static_cast<std::streamsize>(result.size()));
            if (!f) return usage("cannot write " + positional[2]);
        }
        if (in_memory) {
            vips::VImage::new_from_memory(restored.data(), restored.size(), out.width, out.height, out.channels,
                                          VIPS_FORMAT_UCHAR)
                .write_to_file(positional[2].c_str());
        }
    } catch (const hermes::Exception &exc) {
        std::fprintf(stderr, "hermes-restore: %s\n", exc.what());
        return 1;
    } catch (const vips::VError &exc) {
        std::fprintf(stderr, "hermes-restore: %s\n", exc.what());
        return 1;
    }
    return 0;
}
