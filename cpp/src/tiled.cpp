// Tiled run (see tiled.hpp). Float arithmetic mirrors stitch.py expression by
// expression; CMake builds this file with -ffp-contract=off.
#include "tiled.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace hermes {

namespace {

// np.pad(mode="symmetric") index: period 2n, mirrored including the edge sample.
inline int symmetric(int i, int n) {
    const int r = i % (2 * n);
    return r < n ? r : 2 * n - 1 - r;
}

// Band accumulator of stitch.py: scale*tile_h output rows of scale*padded_w columns;
// the weight sums are separable (WY[y] * WX[x]) and never stored per pixel.
class Stitcher {
public:
    Stitcher(const TilePlan &plan, int channels) : plan_(plan), channels_(channels) {
        const int s = plan.scale;
        out_w_ = s * plan.padded_w();
        out_h_ = s * plan.height;
        crop_w_ = s * plan.width;
        band_ = s * plan.tile_h;
        for (size_t r = 0; r < plan.ys.size(); ++r) wy_.push_back(plan.row_profile(static_cast<int>(r)));
        for (size_t c = 0; c < plan.xs.size(); ++c) wx_.push_back(plan.col_profile(static_cast<int>(c)));
        WY_.assign(static_cast<size_t>(s * plan.padded_h()), 0.0f);
        for (size_t r = 0; r < plan.ys.size(); ++r)
            for (int i = 0; i < band_; ++i) WY_[static_cast<size_t>(s * plan.ys[r] + i)] += wy_[r][static_cast<size_t>(i)];
        WX_.assign(static_cast<size_t>(out_w_), 0.0f);
        for (size_t c = 0; c < plan.xs.size(); ++c)
            for (int i = 0; i < s * plan.tile_w; ++i) WX_[static_cast<size_t>(s * plan.xs[c] + i)] += wx_[c][static_cast<size_t>(i)];
        acc_.assign(static_cast<size_t>(band_) * out_w_ * channels_, 0.0f);
        inv_x_.resize(static_cast<size_t>(crop_w_));
        for (int x = 0; x < crop_w_; ++x) inv_x_[static_cast<size_t>(x)] = 1.0f / std::max(WX_[static_cast<size_t>(x)], 1e-12f);
        strip_.resize(static_cast<size_t>(kStrip) * crop_w_ * channels_);
    }

    // out: (channels, s*tile_h, s*tile_w) planar, as the network writes it
    void add(int row, int col, const float *out) {
        const int s = plan_.scale;
        const int a = s * plan_.ys[static_cast<size_t>(row)] - base_;
        const int x0 = s * plan_.xs[static_cast<size_t>(col)];
        const int oh = s * plan_.tile_h, ow = s * plan_.tile_w;
        const std::vector<float> &wy = wy_[static_cast<size_t>(row)];
        const std::vector<float> &wx = wx_[static_cast<size_t>(col)];
        const size_t plane = static_cast<size_t>(oh) * ow;
        for (int i = 0; i < oh; ++i) {
            float *dst = &acc_[(static_cast<size_t>(a + i) * out_w_ + x0) * channels_];
            const float wyi = wy[static_cast<size_t>(i)];
            for (int j = 0; j < ow; ++j) {
                const float w = wyi * wx[static_cast<size_t>(j)];
                for (int ch = 0; ch < channels_; ++ch)
                    dst[static_cast<size_t>(j) * channels_ + ch] += out[ch * plane + static_cast<size_t>(i) * ow + j] * w;
            }
        }
    }

    // after every tile of `row` is added: write the rows now final, in strips
    void finish_row(int row, const WriteRows &write) {
        const int s = plan_.scale;
        const bool last = row == static_cast<int>(plan_.ys.size()) - 1;
        const int limit = last ? s * (plan_.ys[static_cast<size_t>(row)] + plan_.tile_h)
                               : s * plan_.ys[static_cast<size_t>(row) + 1];
        const int k = limit - base_;
        for (int i = 0; i < k; i += kStrip) {
            const int j = std::min(k, i + kStrip);
            const int keep = std::max(0, std::min(j - i, out_h_ - emitted_));
            if (keep) {
                for (int r = 0; r < keep; ++r) {
                    const float inv_y = 1.0f / std::max(WY_[static_cast<size_t>(base_ + i + r)], 1e-12f);
                    const float *src = &acc_[static_cast<size_t>(i + r) * out_w_ * channels_];
                    float *dst = &strip_[static_cast<size_t>(r) * crop_w_ * channels_];
                    for (int x = 0; x < crop_w_; ++x) {
                        const float f = inv_y * inv_x_[static_cast<size_t>(x)];
                        for (int ch = 0; ch < channels_; ++ch)
                            dst[static_cast<size_t>(x) * channels_ + ch] = src[static_cast<size_t>(x) * channels_ + ch] * f;
                    }
                }
                write(strip_.data(), keep);
                emitted_ += keep;
            }
        }
        const int rest = band_ - k;
        const size_t row_len = static_cast<size_t>(out_w_) * channels_;
        if (rest > 0) std::memmove(acc_.data(), acc_.data() + static_cast<size_t>(k) * row_len, static_cast<size_t>(rest) * row_len * sizeof(float));
        std::fill(acc_.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(std::max(rest, 0)) * row_len), acc_.end(), 0.0f);
        base_ = limit;
    }

private:
    static constexpr int kStrip = 64;
    const TilePlan &plan_;
    int channels_;
    int out_w_ = 0, out_h_ = 0, crop_w_ = 0, band_ = 0;
    std::vector<std::vector<float>> wy_, wx_;
    std::vector<float> WY_, WX_, acc_, inv_x_, strip_;
    int base_ = 0, emitted_ = 0;
};

}  // namespace

TiledStats run_tiled(BackendSession &session, const Spec &spec, const TilePlan &plan,
                     const ReadRows &read, const float *context, const WriteRows &write,
                     int batch) {
    TiledStats stats;
    const int th = plan.tile_h, tw = plan.tile_w, W = plan.width, H = plan.height;
    const int size = spec.batch ? *spec.batch : std::max(1, batch);
    const size_t tile_len = 3u * static_cast<size_t>(th) * tw;
    const size_t out_len = static_cast<size_t>(spec.out_channels) * spec.scale * th * spec.scale * tw;
    const size_t row_len = static_cast<size_t>(W) * 3;

    std::vector<float> band(static_cast<size_t>(th) * row_len);  // rows [band_y, band_y + band_n)
    int band_y = 0, band_n = 0, read_to = 0;
    std::vector<float> tiles(static_cast<size_t>(size) * tile_len);
    std::vector<float> outs(static_cast<size_t>(size) * out_len);
    std::vector<std::pair<int, int>> pending;
    Stitcher stitcher(plan, spec.out_channels);
    const int ncols = static_cast<int>(plan.xs.size());
    std::vector<int> col_src(static_cast<size_t>(tw));

    auto flush = [&](int real) {
        for (int b = real; b < size; ++b)  // a fixed-batch graph: fill up with copies
            std::memcpy(&tiles[static_cast<size_t>(b) * tile_len], &tiles[static_cast<size_t>(real - 1) * tile_len], tile_len * sizeof(float));
        const auto t0 = std::chrono::steady_clock::now();
        session.infer(tiles.data(), size, th, tw, context, outs.data());
        stats.compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (int b = 0; b < real; ++b) {
            const auto [r, c] = pending[static_cast<size_t>(b)];
            stitcher.add(r, c, &outs[static_cast<size_t>(b) * out_len]);
            if (c == ncols - 1) stitcher.finish_row(r, write);
        }
        pending.clear();
    };

    for (size_t r = 0; r < plan.ys.size(); ++r) {
        const int y = plan.ys[r];
        const int end = std::min(H, y + th);
        // drop rows above y, then read the new ones below
        const int drop = std::min(band_n, std::max(0, y - band_y));
        if (drop > 0 && drop < band_n)
            std::memmove(band.data(), band.data() + static_cast<size_t>(drop) * row_len, static_cast<size_t>(band_n - drop) * row_len * sizeof(float));
        band_n -= drop;
        band_y = y;
        if (end > read_to) {
            read(read_to, end, band.data() + static_cast<size_t>(band_n) * row_len);
            band_n += end - read_to;
            read_to = end;
        }
        const int n = std::min(band_n, th);
        for (size_t c = 0; c < plan.xs.size(); ++c) {
            const int x = plan.xs[c];
            for (int k = 0; k < tw; ++k) col_src[static_cast<size_t>(k)] = symmetric(x + k, W);
            float *t = &tiles[pending.size() * tile_len];
            const size_t plane = static_cast<size_t>(th) * tw;
            for (int i = 0; i < th; ++i) {
                const float *src = band.data() + static_cast<size_t>(symmetric(i, n)) * row_len;
                for (int k = 0; k < tw; ++k) {
                    const float *px = src + static_cast<size_t>(col_src[static_cast<size_t>(k)]) * 3;
                    const size_t o = static_cast<size_t>(i) * tw + k;
                    t[o] = px[0];
                    t[plane + o] = px[1];
                    t[2 * plane + o] = px[2];
                }
            }
            pending.emplace_back(static_cast<int>(r), static_cast<int>(c));
            if (static_cast<int>(pending.size()) == size) flush(size);
        }
    }
    if (!pending.empty()) flush(static_cast<int>(pending.size()));
    return stats;
}

}  // namespace hermes
