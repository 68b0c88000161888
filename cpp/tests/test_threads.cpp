// One loaded model, many threads: 4 threads x 8 images, each thread with its own
// session, give the same bytes as one thread doing all 32.
#include <thread>

#include "common.hpp"

namespace {

TEST(Threads, FourThreadsOneModelSameBytes) {
    constexpr int kThreads = 4, kImages = 8;
    std::vector<test::Image> inputs;
    for (int i = 0; i < kThreads * kImages; ++i) inputs.push_back(test::pattern(40 + 8 * (i % 3), 36, 3, HERMES_SAMPLE_U8, i));
    hermes::Model &model = test::shared_model();
    std::vector<std::vector<uint8_t>> serial(inputs.size()), parallel(inputs.size());
    {
        hermes::Session s(model, test::tiles(32));
        for (size_t i = 0; i < inputs.size(); ++i) {
            test::Image out = test::output_for(s, inputs[i]);
            hermes_image iv = inputs[i].view(), ov = out.view();
            hermes::check(hermes_restore(s.get(), &iv, &ov));
            serial[i] = out.bytes;
        }
    }
    std::vector<std::thread> pool;
    std::vector<std::string> errors(kThreads);
    for (int t = 0; t < kThreads; ++t)
        pool.emplace_back([&, t] {
            try {
                hermes::Session s(model, test::tiles(32));
                for (int k = 0; k < kImages; ++k) {
                    const size_t i = static_cast<size_t>(t * kImages + k);
                    test::Image out = test::output_for(s, inputs[i]);
                    hermes_image iv = inputs[i].view(), ov = out.view();
                    hermes::check(hermes_restore(s.get(), &iv, &ov));
                    parallel[i] = out.bytes;
                }
            } catch (const std::exception &exc) {
                errors[static_cast<size_t>(t)] = exc.what();
            }
        });
    for (auto &th : pool) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[static_cast<size_t>(t)], "") << "thread " << t;
    for (size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(parallel[i], serial[i]) << "image " << i;
}

TEST(Threads, LastErrorIsPerThread) {
    hermes_model *m = nullptr;
    ASSERT_NE(hermes_model_load(nullptr, nullptr, &m), HERMES_OK);
    const std::string mine = hermes_last_error();
    hermes_status theirs = HERMES_OK;
    std::thread other([&theirs] {
        hermes_model *m2 = nullptr;
        theirs = hermes_model_load("elsewhere.txt", nullptr, &m2);
    });
    other.join();
    EXPECT_NE(theirs, HERMES_OK);
    EXPECT_EQ(std::string(hermes_last_error()), mine);
}

}  // namespace
