// Restore an in-memory image with the C++ wrapper: restore_cpp MODEL
// (a synthetic 96x64 RGB gradient; prints the output size and the model's backend).
#include <cstdint>
#include <cstdio>
#include <hermes/hermes.hpp>
#include <vector>

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: restore_cpp MODEL\n");
        return 2;
    }
    try {
        hermes::Model model(argv[1]);    // share this one between threads
        hermes::Session session(model);  // one per thread
        const int w = 96, h = 64;
        std::vector<uint8_t> in(static_cast<size_t>(w) * h * 3);
        for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i % 251);
        const auto [ow, oh] = session.output_size(w, h);
        std::vector<uint8_t> out(static_cast<size_t>(ow) * oh * 3);
        hermes_image src{w, h, 3, HERMES_SAMPLE_U8, 0, in.data()};
        hermes_image dst{ow, oh, 3, HERMES_SAMPLE_U8, 0, out.data()};
        session.restore(src, dst);
        std::printf("%dx%d -> %dx%d on %s\n", w, h, ow, oh, model.backend_name().c_str());
    } catch (const hermes::Exception &exc) {
        std::fprintf(stderr, "restore_cpp: %s\n", exc.what());
        return 1;
    }
    return 0;
}
