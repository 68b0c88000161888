// Streaming image files with libvips' C++ API, as hermes_deploy/runtime/images.py does
// with pyvips: FileSource hands out rows top to bottom from a sequential pipeline
// (EXIF orientation applied, CMYK and other spaces converted to sRGB, 8/16-bit, grey or
// RGB, alpha split off and upscaled on its own); FileSink writes finished rows to an
// uncompressed temporary file beside the destination, converts it in sequential mode
// into the final format under a temporary name, and renames it into place, so an
// output is complete or absent. Memory stays flat in the image height.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hermes {

void init_vips();  // once per process; safe to call from any thread

// Bicubic resize of an interleaved 8/16-bit image held in memory, through
// libvips (the same kernel the Python runtime uses for context copies and alpha).
std::vector<uint8_t> resize_memory(const void *data, int width, int height, int bands,
                                   int bytes_per_sample, double factor, int *out_w, int *out_h);

class FileSource {
public:
    FileSource(const std::string &path, long long max_pixels);
    // an encoded image in memory (kept alive by the caller while the source is used);
    // `name` stands for it in messages
    FileSource(const void *data, size_t size, const std::string &name, long long max_pixels);
    ~FileSource();
    FileSource(const FileSource &) = delete;
    FileSource &operator=(const FileSource &) = delete;

    int width() const;
    int height() const;
    int colour() const;  // 1 or 3
    bool alpha() const;
    int depth() const;   // 8 or 16
    // rows [y0, y1) as (rows, width, 3) float32; y0 continues the last read
    void read_rows(int y0, int y1, float *dst);
    // the whole image as (3, h, w) float32, downscaled so its long side <= max_side
    std::vector<float> context_image(int max_side, int *h, int *w);

    struct Impl;
    Impl &impl() { return *impl_; }

private:
    void open_header(long long max_pixels);
    std::unique_ptr<Impl> impl_;
};

class FileSink {
public:
    // checks the output size against the format's limits first
    FileSink(const std::string &path, int width, int height, FileSource &source, int scale);
    // encode into memory instead (take() after finish()); format png|jpg|webp|tif
    struct Memory {};
    FileSink(Memory, const std::string &format, int width, int height, FileSource &source, int scale);
    ~FileSink();  // removes temporaries of an unfinished write
    FileSink(const FileSink &) = delete;
    FileSink &operator=(const FileSink &) = delete;
    void write(const float *rows, int n);  // (n, width, 3) float32
    void finish();                          // convert, publish atomically
    std::vector<uint8_t> take();            // the encoded image (memory sinks)

private:
    void setup(int width, int height, FileSource &source, int scale);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hermes
