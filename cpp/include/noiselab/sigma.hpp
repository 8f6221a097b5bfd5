// Noise level sigma from a background sample (no signal: Rayleigh for one coil,
// central chi with 2N degrees of freedom for N coils combined by sum of squares).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "noiselab/box_moments.hpp"
#include "noiselab/view.hpp"

// Vectorised reductions where OpenMP (or -fopenmp-simd) is on; deterministic for a build.
#if defined(_OPENMP) && _OPENMP >= 201307  // OpenMP 4.0: MSVC's OpenMP 2.0 has no `omp simd`
#define NOISELAB_SIMD_SAMPLE \
    _Pragma("omp simd reduction(+ : n, zx, nf, neg, z, sum, sq) reduction(min : lo) reduction(max : hi)")
#define NOISELAB_SIMD_CENTRED _Pragma("omp simd reduction(+ : c)")
#else
#define NOISELAB_SIMD_SAMPLE
#define NOISELAB_SIMD_CENTRED
#endif

namespace noiselab {

/// How sigma is derived from the background sample.
enum class SigmaMethod {
    std_dev,  ///< std(M) / sqrt(2N - beta_N^2); the seed's std/0.655 for N = 1.
    mle,      ///< sigma^2 = sum(M^2) / (2 N n): maximum likelihood, unbiased for sigma^2.
    mean,     ///< mean(M) / beta_N.
};

namespace detail {

// From this coil count on, beta_N comes from the series below (O(1) in N) instead of
// the recurrence (one step per coil, exact to a few ulps before it).
constexpr unsigned chi_series_from = 32;

/// ln(beta_N / sqrt(2N)) = ln(Gamma(N + 1/2) / (sqrt(N) Gamma(N))) for N >= chi_series_from.
/// From ln Gamma(z + h) ~ (z + h - 1/2) ln z - z + ln(2 pi)/2
/// + sum_n (-1)^(n+1) B_(n+1)(h) / (n (n+1) z^n) (DLMF 5.11.8) at h = 1/2 and 0, with
/// B_(n+1)(1/2) = (2^-n - 1) B_(n+1): the terms (2^-n - 2) B_(n+1) / (n (n+1) N^n), odd n.
/// The first left out (n = 9, -0.00168 / N^9) is below 1e-16 of the sum at N = 32.
inline double chi_log_beta_excess(unsigned coils) {
    const double x = 1.0 / coils, x2 = x * x;
    return x * (-1.0 / 8.0 + x2 * (1.0 / 192.0 + x2 * (-1.0 / 640.0 + x2 * (17.0 / 14336.0))));
}

}  // namespace detail

/// E[M] / sigma of background noise with `coils` coils:
/// beta_N = sqrt(pi/2) (2N-1)!! / (2^(N-1) (N-1)!) = sqrt(2) Gamma(N + 1/2) / Gamma(N), by the
/// recurrence beta_{N+1} = beta_N (2N+1) / (2N) for few coils, else by Stirling's series.
inline double chi_beta(unsigned coils) {
    if (coils < 1) throw std::invalid_argument("noiselab: coils must be >= 1");
    if (coils >= detail::chi_series_from)
        return std::sqrt(2.0 * coils) * std::exp(detail::chi_log_beta_excess(coils));
    double b = std::sqrt(std::acos(-1.0) / 2.0);
    for (unsigned k = 1; k < coils; ++k) b *= (2.0 * k + 1.0) / (2.0 * k);
    return b;
}

/// std(M) / sigma of background noise: sqrt(2N - beta_N^2) (0.6551 for N = 1). 2N - beta_N^2
/// tends to 1/2 while both terms grow, so for many coils it is -2N expm1(2 ln(beta_N / sqrt(2N))),
/// where nothing cancels.
inline double chi_std_factor(unsigned coils) {
    if (coils >= detail::chi_series_from)
        return std::sqrt(-2.0 * coils * std::expm1(2.0 * detail::chi_log_beta_excess(coils)));
    const double b = chi_beta(coils);
    return std::sqrt(2.0 * coils - b * b);
}

/// Expected mean/std of background noise (1.9131 for N = 1).
inline double chi_mean_std_ratio(unsigned coils) { return chi_beta(coils) / chi_std_factor(coils); }

/// Options for sample_stats().
struct SampleOptions {
    /// Only voxels where the mask is non-zero count. Leave data null for no mask.
    ArrayView<const std::uint8_t> mask{};
    /// Leave out exact zeros (zero padding, suppressed background): they bias every estimator down.
    bool exclude_zeros = false;
    /// Threads; 0 uses OpenMP's default. Results are bit-identical for any value.
    int threads = 0;
};

/// Statistics of a sample, with the counts needed to validate it.
struct SampleStats {
    std::size_t n = 0;               ///< values used
    std::size_t zeros_excluded = 0;  ///< exact zeros left out (exclude_zeros)
    std::size_t nonfinite = 0;       ///< NaN or infinite values (left out of the moments)
    std::size_t negative = 0;        ///< negative values (included)
    std::size_t zeros = 0;           ///< zeros among the n values used
    double mean = 0.0;
    double std = 0.0;      ///< population standard deviation (ddof = 0), two-pass
    double mean_sq = 0.0;  ///< mean of M^2
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
};

namespace detail {

struct SamplePartial {
    std::size_t n = 0, zeros_excluded = 0, nonfinite = 0, negative = 0, zeros = 0;
    double sum = 0.0, sum_sq = 0.0, centred = 0.0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
};

// Visits every row of a padded view in fixed blocks of rows, in parallel; the block
// layout depends only on the shape, so per-block partials merge identically.
template <class F>
void for_row_blocks(const std::array<std::size_t, 4>& shape, int threads,
                    std::vector<SamplePartial>& parts, F&& f) {
    const std::size_t rows = shape[0] * shape[1] * shape[2];
    constexpr std::size_t rows_per_block = 64;
    const std::size_t nb = (rows + rows_per_block - 1) / rows_per_block;
    parts.assign(nb, SamplePartial{});
    int nt = threads > 0 ? threads : default_threads();
    nt = static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(nt), nb)));
    const auto nbs = static_cast<std::ptrdiff_t>(nb);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (std::ptrdiff_t b = 0; b < nbs; ++b) {
        const std::size_t r0 = static_cast<std::size_t>(b) * rows_per_block;
        const std::size_t r1 = std::min(rows, r0 + rows_per_block);
        for (std::size_t r = r0; r < r1; ++r) {
            const std::array<std::size_t, 3> i{r / (shape[1] * shape[2]), (r / shape[2]) % shape[1],
                                               r % shape[2]};
            f(parts[static_cast<std::size_t>(b)], i);
        }
    }
}

}  // namespace detail

/// Count, mean, standard deviation and validation counts of a sample (any shape, strided).
template <class T>
SampleStats sample_stats(ArrayView<const T> sample, const SampleOptions& opt = {}) {
    detail::check_view(sample, "background");
    detail::check_mask(sample, opt.mask);
    const detail::Padded<const T> in(sample);
    const detail::Padded<const std::uint8_t> mask(opt.mask);
    const bool masked = opt.mask.data != nullptr;
    const std::size_t nx = in.shape[3];
    const bool unit = in.xstride() == 1 && (!masked || mask.xstride() == 1);
    auto rows = [&](auto pass) {
        std::vector<detail::SamplePartial> parts;
        detail::for_row_blocks(in.shape, opt.threads, parts, [&](detail::SamplePartial& p, const auto& i) {
            const std::uint8_t* mk = masked ? mask.row(i) : nullptr;
            // Unit strides known at compile time let the row loops vectorise.
            const std::integral_constant<std::ptrdiff_t, 1> one;
            if (unit) pass(p, in.row(i), one, mk, one, nx);
            else pass(p, in.row(i), in.xstride(), mk, masked ? mask.xstride() : std::ptrdiff_t{0}, nx);
        });
        return parts;
    };
    const bool excl = opt.exclude_zeros;
    auto first = [&](detail::SamplePartial& p, const T* src, auto sx, const std::uint8_t* mk, auto mx,
                     std::size_t len) {
        std::size_t n = 0, zx = 0, nf = 0, neg = 0, z = 0;
        double sum = 0.0, sq = 0.0, lo = p.min, hi = p.max;
        NOISELAB_SIMD_SAMPLE
        for (std::size_t x = 0; x < len; ++x) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            const double v = static_cast<double>(src[xi * sx]);
            const bool inside = mk == nullptr || mk[xi * mx] != 0;
            const bool finite = v - v == 0.0;
            const bool zero = v == 0.0;
            const bool use = inside & finite & !(zero & excl);
            nf += inside & !finite;
            zx += inside & finite & zero & excl;
            n += use;
            neg += use & (v < 0.0);
            z += use & zero;
            const double u = use ? v : 0.0;  // a select: NaN must not reach the sums
            sum += u;
            sq += u * u;
            lo = (use & (v < lo)) ? v : lo;
            hi = (use & (v > hi)) ? v : hi;
        }
        p.n += n;
        p.zeros_excluded += zx;
        p.nonfinite += nf;
        p.negative += neg;
        p.zeros += z;
        p.sum += sum;
        p.sum_sq += sq;
        p.min = lo;
        p.max = hi;
    };
    const std::vector<detail::SamplePartial> parts = rows(first);
    SampleStats s;
    double sum = 0.0, sum_sq = 0.0;
    for (const auto& p : parts) {
        s.n += p.n;
        s.zeros_excluded += p.zeros_excluded;
        s.nonfinite += p.nonfinite;
        s.negative += p.negative;
        s.zeros += p.zeros;
        sum += p.sum;
        sum_sq += p.sum_sq;
        s.min = std::min(s.min, p.min);
        s.max = std::max(s.max, p.max);
    }
    if (s.n == 0) return s;
    const double nn = static_cast<double>(s.n);
    s.mean = sum / nn;
    s.mean_sq = sum_sq / nn;
    // Second pass around the mean: sum(M^2)/n - mean^2 cancels badly when std << mean.
    const double mean = s.mean;
    auto second = [&](detail::SamplePartial& p, const T* src, auto sx, const std::uint8_t* mk, auto mx,
                      std::size_t len) {
        double c = 0.0;
        NOISELAB_SIMD_CENTRED
        for (std::size_t x = 0; x < len; ++x) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            const double v = static_cast<double>(src[xi * sx]);
            const bool use = (mk == nullptr || mk[xi * mx] != 0) & (v - v == 0.0) & !((v == 0.0) & excl);
            const double d = (use ? v : mean) - mean;  // selects v, as in the first pass: vectorises
            c += d * d;
        }
        p.centred += c;
    };
    const std::vector<detail::SamplePartial> centred_parts = rows(second);
    double centred = 0.0;
    for (const auto& p : centred_parts) centred += p.centred;
    s.std = std::sqrt(centred / nn);
    return s;
}

/// A sigma estimate with what is needed to judge the background it came from.
struct SigmaEstimate {
    double sigma = 0.0;
    SigmaMethod method = SigmaMethod::mle;
    unsigned coils = 1;
    std::size_t n = 0;
    double mean = 0.0;
    double std = 0.0;
    double ratio = 0.0;           ///< mean/std of the sample (infinite when std is 0)
    double expected_ratio = 0.0;  ///< mean/std expected for pure noise with `coils` coils
};

/// Sigma from sample statistics. Throws std::invalid_argument when the sample is empty,
/// holds NaN/inf or negative values, is all zeros, or (std_dev) has zero spread.
inline SigmaEstimate estimate_sigma(const SampleStats& s, SigmaMethod method, unsigned coils = 1) {
    if (coils < 1) throw std::invalid_argument("noiselab: coils must be >= 1, got 0");
    if (s.nonfinite) throw std::invalid_argument("noiselab: background contains NaN or infinite values");
    if (s.negative) throw std::invalid_argument("noiselab: background contains negative values");
    if (s.n == 0) throw std::invalid_argument("noiselab: background has no usable values");
    if (s.zeros == s.n) throw std::invalid_argument("noiselab: background is all zeros");
    SigmaEstimate e;
    e.method = method;
    e.coils = coils;
    e.n = s.n;
    e.mean = s.mean;
    e.std = s.std;
    e.ratio = s.std > 0 ? s.mean / s.std : std::numeric_limits<double>::infinity();
    e.expected_ratio = chi_mean_std_ratio(coils);
    switch (method) {
        case SigmaMethod::std_dev:
            if (s.std == 0.0)
                throw std::invalid_argument("noiselab: unable to estimate noise from background (std = 0)");
            e.sigma = s.std / chi_std_factor(coils);
            break;
        case SigmaMethod::mle: e.sigma = std::sqrt(s.mean_sq / (2.0 * coils)); break;
        case SigmaMethod::mean: e.sigma = s.mean / chi_beta(coils); break;
    }
    return e;
}

/// Convenience: sample_stats() then estimate_sigma().
template <class T>
SigmaEstimate estimate_sigma(ArrayView<const T> background, SigmaMethod method, unsigned coils = 1,
                             const SampleOptions& opt = {}) {
    return estimate_sigma(sample_stats(background, opt), method, coils);
}

}  // namespace noiselab
