// Sample conversions of hermes_deploy/runtime/images.py: to_float_rgb (8/16-bit ->
// float32 in [0, 1], grey repeated into three channels) and from_float (clip, scale to
// the peak, +0.5, truncate; grey output is the mean of the three channels).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace hermes {

// One row of `width` pixels with `step` samples per pixel, of which the first `colour`
// (1 or 3) are colour -> (width, 3) float32.
// The factor from a stored sample to [0, 1]: 1/255, 1/65535, or 1 for float samples.
template <typename T>
constexpr float to_unit() {
    if constexpr (sizeof(T) == 1) return static_cast<float>(1.0 / 255.0);
    else if constexpr (sizeof(T) == 2) return static_cast<float>(1.0 / 65535.0);
    else return 1.0f;
}

template <typename T>
void row_to_float(const T *src, int width, int step, int colour, float *dst) {
    const float k = to_unit<T>();
    for (int x = 0; x < width; ++x) {
        const T *p = src + static_cast<size_t>(x) * step;
        float *q = dst + static_cast<size_t>(x) * 3;
        if (colour == 1) {
            const float v = static_cast<float>(p[0]) * k;
            q[0] = q[1] = q[2] = v;
        } else {
            q[0] = static_cast<float>(p[0]) * k;
            q[1] = static_cast<float>(p[1]) * k;
            q[2] = static_cast<float>(p[2]) * k;
        }
    }
}

// (width, 3) float32 -> `width` pixels of `step` samples, the first `colour` written;
// float samples are written as the model gave them (no clip, no rounding).
template <typename T>
void row_from_float(const float *src, int width, int step, int colour, T *dst) {
    const float peak = sizeof(T) == 1 ? 255.0f : 65535.0f;
    auto q = [peak](float v) -> T {
        if constexpr (sizeof(T) == 4) {
            return v;
        } else {
            v = std::min(std::max(v, 0.0f), 1.0f);
            v *= peak;
            v += 0.5f;
            return static_cast<T>(v);
        }
    };
    for (int x = 0; x < width; ++x) {
        const float *p = src + static_cast<size_t>(x) * 3;
        T *o = dst + static_cast<size_t>(x) * step;
        if (colour == 1) {
            o[0] = q((p[0] + p[1] + p[2]) / 3.0f);
        } else {
            o[0] = q(p[0]);
            o[1] = q(p[1]);
            o[2] = q(p[2]);
        }
    }
}

}  // namespace hermes
