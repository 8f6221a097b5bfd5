// Slow, obviously-correct references for the tests: direct summation over every
// window, with reflection done by repeated mirroring rather than the modulo rule.
#pragma once

#include <array>
#include <cstddef>
#include <random>
#include <vector>

namespace ref {

inline std::size_t mirror(std::ptrdiff_t j, std::size_t n) {
    const auto nn = static_cast<std::ptrdiff_t>(n);
    while (j < 0 || j >= nn) j = j < 0 ? -j - 1 : 2 * nn - 1 - j;
    return static_cast<std::size_t>(j);
}

/// A C-ordered array of up to 4 dims, padded to 4 with leading 1s.
struct Array {
    std::array<std::size_t, 4> shape{1, 1, 1, 1};
    std::vector<double> v;
    std::size_t at(std::size_t a, std::size_t b, std::size_t c, std::size_t d) const {
        return ((a * shape[1] + b) * shape[2] + c) * shape[3] + d;
    }
};

/// Box mean of f(x) with windows w (padded like shape); mask (may be empty) restricts
/// the contributing voxels, and the mean then divides by their count.
template <class F>
std::vector<double> box_mean(const Array& x, const std::array<std::size_t, 4>& w, F f,
                             const std::vector<unsigned char>& mask = {}) {
    std::vector<double> out(x.v.size());
    const auto& s = x.shape;
    for (std::size_t a = 0; a < s[0]; ++a)
        for (std::size_t b = 0; b < s[1]; ++b)
            for (std::size_t c = 0; c < s[2]; ++c)
                for (std::size_t d = 0; d < s[3]; ++d) {
                    double sum = 0.0, count = 0.0;
                    std::array<std::size_t, 4> o{a, b, c, d};
                    std::array<std::ptrdiff_t, 4> lo;
                    for (int k = 0; k < 4; ++k)
                        lo[k] = static_cast<std::ptrdiff_t>(o[k]) - static_cast<std::ptrdiff_t>(w[k] / 2);
                    for (std::size_t i = 0; i < w[0]; ++i)
                        for (std::size_t j = 0; j < w[1]; ++j)
                            for (std::size_t k = 0; k < w[2]; ++k)
                                for (std::size_t l = 0; l < w[3]; ++l) {
                                    const std::size_t idx =
                                        x.at(mirror(lo[0] + static_cast<std::ptrdiff_t>(i), s[0]),
                                             mirror(lo[1] + static_cast<std::ptrdiff_t>(j), s[1]),
                                             mirror(lo[2] + static_cast<std::ptrdiff_t>(k), s[2]),
                                             mirror(lo[3] + static_cast<std::ptrdiff_t>(l), s[3]));
                                    if (!mask.empty() && !mask[idx]) continue;
                                    sum += f(x.v[idx]);
                                    count += 1.0;
                                }
                    out[x.at(a, b, c, d)] = count > 0 ? sum / count : 0.0;
                }
    return out;
}

inline Array random_array(std::array<std::size_t, 4> shape, unsigned seed, double lo = 0.0, double hi = 100.0) {
    Array a;
    a.shape = shape;
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    a.v.resize(shape[0] * shape[1] * shape[2] * shape[3]);
    for (auto& e : a.v) e = u(gen);
    return a;
}

}  // namespace ref
