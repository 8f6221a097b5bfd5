// Rician / noncentral-chi bias correction fused with the box moments and with
// the validation of the image, in one sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "noiselab/box_moments.hpp"
#include "noiselab/view.hpp"

// Asks for a vectorised loop with these reductions where OpenMP (or -fopenmp-simd) is on.
#if defined(_OPENMP) && _OPENMP >= 201307  // OpenMP 4.0: MSVC's OpenMP 2.0 has no `omp simd`
#define NOISELAB_SIMD_REDUCE \
    _Pragma("omp simd reduction(+ : cn, cf, cneg, cz) reduction(min : lo) reduction(max : hi)")
#define NOISELAB_SIMD_ROOTS _Pragma("omp simd reduction(+ : below, over) reduction(max : tiny)")
#else
#define NOISELAB_SIMD_REDUCE
#define NOISELAB_SIMD_ROOTS
#endif

namespace noiselab {

/// Which correction correct() applies. With N coils and box means <.> over the window:
enum class Correction {
    /// A^2 = <M^2> - 2 N sigma^2 (Gudbjartsson & Patz 1995). With a window of 1 on
    /// every axis this is pointwise power subtraction.
    moments,
    /// Aja-Fernandez et al. 2008 LMMSE: A^2 = <M^2> - 2 N sigma^2 + K (M^2 - <M^2>),
    /// K = 1 - 4 sigma^2 (<M^2> - N sigma^2) / (<M^4> - <M^2>^2), clamped to [0, 1];
    /// then A = Re sqrt(A^2 + i s/2) = sqrt((A^2 + hypot(A^2, s/2)) / 2) instead of
    /// sqrt(max(A^2, 0)), with s^2 = 4 sigma^2 (K^2 (max(A^2, 0) + N sigma^2) +
    /// (1 - K^2) max(<M^2> - N sigma^2, 0) / n) the variance of the A^2 estimate (n voxels
    /// in the window). The plain root of a noisy A^2 is biased low by about s^2 / (8 A^3),
    /// up to 0.1 sigma at SNR 1 with many coils; this one cancels that term, needs no
    /// clamp, and s/2 gives the smallest worst-case bias (2.4% of A) for A^2 >= 0.75 s
    /// when the A^2 estimate's error is normal.
    lmmse,
};

/// Options for correct().
struct CorrectionOptions {
    Correction method = Correction::moments;
    /// Receiver coils combined by sum of squares (noncentral chi with 2N degrees of freedom).
    unsigned coils = 1;
    /// Only voxels where the mask is non-zero enter the local moments, and only they are
    /// corrected; the others are copied unchanged. Leave data null for no mask.
    ArrayView<const std::uint8_t> mask{};
    /// Sigma per voxel, same shape as the image (strides of 0 broadcast, e.g. one value
    /// per volume). Leave data null to use the scalar sigma. The values are not checked
    /// here (that would cost another pass): the caller passes finite values > 0.
    ArrayView<const double> sigma_map{};
    /// Threads; 0 uses OpenMP's default. Results are bit-identical for any value.
    int threads = 0;
};

/// What correct() saw while it ran: the image validation and the clamped count.
struct CorrectionReport {
    std::size_t n = 0;          ///< voxels corrected (in the mask, if any)
    std::size_t nonfinite = 0;  ///< NaN or infinite input voxels
    std::size_t negative = 0;   ///< negative input voxels
    std::size_t zeros = 0;      ///< input voxels equal to 0
    std::size_t clamped = 0;    ///< voxels whose A^2 estimate was negative (set to 0; lmmse: its smooth root)
    double min = std::numeric_limits<double>::infinity();   ///< smallest input voxel
    double max = -std::numeric_limits<double>::infinity();  ///< largest input voxel

    void merge(const CorrectionReport& o) {
        n += o.n;
        nonfinite += o.nonfinite;
        negative += o.negative;
        zeros += o.zeros;
        clamped += o.clamped;
        min = std::min(min, o.min);
        max = std::max(max, o.max);
    }
};

namespace detail {

/// Whether the float root of q >= 0 is good: q is 0 or a normal float. Above FLT_MAX
/// float(q) is inf (A^2 of a float image can be that large); below FLT_MIN it is
/// subnormal or 0 and the root loses its bits (A below ~1e-19).
inline bool float_root_fits(double q) {
    return q == 0.0 || (q >= static_cast<double>(std::numeric_limits<float>::min()) &&
                        q <= static_cast<double>(std::numeric_limits<float>::max()));
}

/// (x + hypot(x, b)) / 2 for b >= 0 (the lmmse root's argument, see Correction::lmmse)
/// without overflow or cancellation: b = sqrt(var_n) sqrt(w), apart so that neither square
/// overflows. For the rare voxels the fast form cannot hold.
inline double smooth_root_arg_exact(double x, double var_n, double w) {
    const double b = std::sqrt(var_n) * std::sqrt(w);
    const double h = std::hypot(x, b);
    return x >= 0.0 ? 0.5 * x + 0.5 * h : 0.5 * b * (b / (h - x));
}

/// sqrt(q) for q >= 0, rounded to T: in float for float output when float_root_fits(q)
/// (`in_float`; twice as fast, within an ulp of the rounded double root), else in double.
template <class T>
inline T root(double q, bool in_float) {
    if constexpr (std::is_same_v<T, float>) {
        if (in_float) return std::sqrt(static_cast<float>(q));
    }
    (void)in_float;
    return static_cast<T>(std::sqrt(q));
}

/// The stored value of corrected magnitude y: y * scale - offset (two roundings), for integer
/// T then rounded to nearest, ties to even (np.rint), clipped to [lo, hi] and cast. Clipping
/// first gives the same integer for integer bounds (rounding is monotone and keeps integers),
/// and NaN becomes lo instead of an undefined cast. Within the bounds |y| < 2^51, where adding
/// and subtracting 1.5 * 2^52 rounds to an integer in the default rounding mode exactly as
/// std::nearbyint does, and vectorises where nearbyint is a library call (x86-64 before SSE4.1).
template <class T>
inline T encode(double y, double scale, double offset, double lo, double hi) {
    y *= scale;
    y -= offset;
    if constexpr (std::is_integral_v<T>) {
        y = y > lo ? y : lo;
        y = y < hi ? y : hi;
        y = (y + 0x1.8p52) - 0x1.8p52;
    } else {
        (void)lo, (void)hi;
    }
    return static_cast<T>(y);
}

/// How correct_stored() converts (see StoredOptions): stored values to magnitudes, and the
/// corrected magnitude y back, `y * to_stored.scale - to_stored.offset`.
struct Conversion {
    SliceAffine to_magnitude, to_stored;
    double lo = 0.0, hi = 0.0;  // integer types: the clip bounds
    bool single = false;        // the corrected magnitude is rounded to float first
};

/// Whether a corrected magnitude of stored type T may be rounded to float first: T's values
/// are exact in float, so that the magnitude is the float image correct<float>() would take.
template <class T>
inline constexpr bool single_ok = std::is_same_v<T, float> || (std::is_integral_v<T> && sizeof(T) <= 2);

/// The correction's output side. T is the element type of input and output: the magnitude
/// itself, or with `Stored` stored values, converted per `conv`.
template <class T, bool Masked, bool Lmmse, bool Map, bool Stored = false>
struct CorrectSink {
    using Stats = CorrectionReport;
    Padded<const T> in;
    Padded<T> out;
    Padded<const std::uint8_t> mask;
    Padded<const double> sigma_map;
    double sigma2 = 0.0;
    double coils = 1.0;
    Conversion conv{};

    // Validation of `len` input voxels of row r, as the sweep first loads them: a separate
    // simple loop vectorises well. Counters as wide as the lanes of the values checked (T,
    // or the magnitudes in double) avoid widening every compare mask; chunks keep them exact.
    template <bool Unit, class Row>
    void check(Stats& st, const Row& r, std::size_t len) const {
        using V = std::conditional_t<Stored, double, T>;
        const T* p = r.p;
        const std::uint8_t* m = r.m;
        const std::ptrdiff_t sx = Unit ? 1 : in.xstride();
        const std::ptrdiff_t mx = Unit ? 1 : (Masked ? mask.xstride() : 0);
        using Count = std::conditional_t<sizeof(V) == 4, std::uint32_t, std::uint64_t>;
        constexpr std::size_t chunk = std::size_t{1} << 30;
        V lo = static_cast<V>(st.min), hi = static_cast<V>(st.max);
        for (std::size_t x0 = 0; x0 < len; x0 += chunk) {
            const std::size_t x1 = std::min(len, x0 + chunk);
            Count cn = 0, cf = 0, cneg = 0, cz = 0;
            NOISELAB_SIMD_REDUCE
            for (std::size_t x = x0; x < x1; ++x) {
                const auto xi = static_cast<std::ptrdiff_t>(x);
                V v;
                if constexpr (Stored) v = magnitude<true>(p[xi * sx], r.scale, r.offset);
                else v = p[xi * sx];
                const bool inside = Masked ? m[xi * mx] != 0 : true;
                cn += inside;
                cf += inside & !(v - v == V(0));  // NaN and inf both fail
                cneg += inside & (v < V(0));
                cz += inside & (v == V(0));
                lo = (inside & (v < lo)) ? v : lo;
                hi = (inside & (v > hi)) ? v : hi;
            }
            st.n += cn;
            st.nonfinite += cf;
            st.negative += cneg;
            st.zeros += cz;
        }
        st.min = static_cast<double>(lo);
        st.max = static_cast<double>(hi);
    }

    void operator()(Stats& st, const std::array<std::size_t, 3>& i, const double* sums,
                    std::size_t cs, double inv) const {
        const bool unit = in.xstride() == 1 && out.xstride() == 1 && (!Masked || mask.xstride() == 1) &&
                          (!Map || sigma_map.xstride() == 1);
        const std::size_t bytes = in.shape[3] * sizeof(T);
        const std::size_t ahead = rows_ahead(bytes);
        if (unit && i[2] + ahead < in.shape[2]) {
            const std::array<std::size_t, 3> next{i[0], i[1], i[2] + ahead};
            if (Lmmse || Masked) prefetch_row(in.row(next), bytes, false);  // they read M again
            prefetch_row(out.row(next), bytes, true);
        }
        // Unit strides known at compile time let the loop vectorise without gathers.
        if constexpr (Stored && single_ok<T>) {
            if (conv.single) {
                if (unit) row<true, float>(st, i, sums, cs, inv);
                else row<false, float>(st, i, sums, cs, inv);
                return;
            }
        }
        using R = std::conditional_t<Stored, double, T>;
        if (unit) row<true, R>(st, i, sums, cs, inv);
        else row<false, R>(st, i, sums, cs, inv);
    }

    // The corrected magnitudes are rounded to R (float or double) before they are stored.
    template <bool Unit, class R>
    void row(Stats& st, const std::array<std::size_t, 3>& i, const double* sums, std::size_t cs,
             double inv) const {
        const std::size_t nx = in.shape[3];
        const T* src = in.row(i);
        T* dst = out.row(i);
        const std::ptrdiff_t sx = Unit ? 1 : in.xstride(), ox = Unit ? 1 : out.xstride();
        const double* count = sums;
        const double* s2 = sums + (Masked ? cs : 0);
        const double* s4 = s2 + cs;
        const std::uint8_t* mk = Masked ? mask.row(i) : nullptr;
        const double* sg = Map ? sigma_map.row(i) : nullptr;
        const std::ptrdiff_t mx = Unit ? 1 : (Masked ? mask.xstride() : 0);
        const std::ptrdiff_t gx = Unit ? 1 : (Map ? sigma_map.xstride() : 0);
        const SliceAffine::Coefficients in_affine = Stored ? conv.to_magnitude.at(i) : SliceAffine::Coefficients{1, 0};
        const SliceAffine::Coefficients out_affine = Stored ? conv.to_stored.at(i) : SliceAffine::Coefficients{1, 0};
        auto magnitude_at = [&](std::ptrdiff_t xi) {
            return magnitude<Stored>(src[xi * sx], in_affine.scale, in_affine.offset);
        };

        // A^2 of voxel x, branch-free so that the loops below vectorise; for lmmse also
        // sigma^2, K and (<M^2> - N sigma^2) / n for its root (see Correction::lmmse). Voxels
        // outside the mask are computed too, then replaced by their input value.
        const double two_n = 2.0 * coils;
        auto a2_at = [&](std::size_t x, double& var_n, double& gain, double& spread) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            var_n = sigma2;
            if constexpr (Map) var_n = sg[xi * gx] * sg[xi * gx];
            double scale = inv;
            if constexpr (Masked) scale = 1.0 / (count[x] > 0.0 ? count[x] : 1.0);
            const double m2 = s2[x] * scale;
            double a2 = m2 - two_n * var_n;
            if constexpr (Lmmse) {
                const double v = magnitude_at(xi);
                const double var = s4[x] * scale - m2 * m2;
                // Divided whatever var is, then selected: a division under a condition stays
                // a branch (it could trap), and the loop would not vectorise.
                double k = 1.0 - 4.0 * var_n * (m2 - coils * var_n) / var;
                k = var > 0.0 ? k : 0.0;
                k = k < 0.0 ? 0.0 : (k > 1.0 ? 1.0 : k);
                a2 += k * (v * v - m2);  // K = 0 adds a zero: A^2 equals moments' to the bit
                gain = k;
                spread = (m2 - coils * var_n) * scale;
            } else {
                (void)gain;
                (void)spread;
            }
            return a2;
        };
        // The lmmse root's (s/2)^2 / sigma^2, max(., 0) as 0.5 (y + |y|) (see the roots). A
        // loop that uses K twice after its selects does not vectorise: K goes through a buffer.
        auto spread_w = [&](double a2, double var_n, double k, double spread) {
            const double own = 0.5 * (a2 + std::fabs(a2)) + coils * var_n;
            return k * k * own + (1.0 - k * k) * 0.5 * (spread + std::fabs(spread));
        };
        // Stored values: voxels outside the mask keep their magnitude, converted back as the
        // corrected ones are.
        auto store = [&](std::size_t x, R corrected) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            if constexpr (Stored) {
                auto to_stored = [&](R y) {
                    return encode<T>(static_cast<double>(y), out_affine.scale, out_affine.offset, conv.lo, conv.hi);
                };
                T value = to_stored(corrected);
                if constexpr (Masked)
                    value = mk[xi * mx] != 0 ? value : to_stored(static_cast<R>(magnitude_at(xi)));
                dst[xi * ox] = value;
            } else if constexpr (Masked) {
                dst[xi * ox] = mk[xi * mx] != 0 ? corrected : src[xi * sx];
            } else {
                dst[xi * ox] = corrected;
            }
        };
        // Then the roots, in float where float_root_fits: the chunk's count of roots'
        // arguments above the type's largest value (or not finite) and its largest one below
        // FLT_MIN tell whether any voxel needs the exact path (about never: A below 1e-19 or
        // above 1e19, or for lmmse a square that overflows), and if so the chunk is done
        // again. GCC turns a select before sqrt into a branch, and the loop would not
        // vectorise: so max(a2, 0) is written 0.5 (a2 + |a2|) (exact but where 2 a2
        // overflows, which sends the chunk to the exact path), the lmmse root's two forms are
        // blended by a 0/1 weight from copysign, and its gain K, which needs selects, is
        // computed in an earlier loop. Counts of 0/1 in double are exact below 2^53, and
        // GCC 12 vectorises them (an integer count of double compares it does not). A^2 with
        // a division or a per-voxel scale goes through a buffer first, so that the
        // reductions keep their registers; plain moments compute it in place.
        constexpr bool buffered = Lmmse || Masked || Map;
        constexpr bool to_float = std::is_same_v<R, float>;
        constexpr double top = to_float ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
        // A positive <M^2> - bias is at least ulp(bias), a normal float when bias >= 2^-74
        // (FLT_MIN = 2^-126 is 2^-52 of it): then plain moments need no look below FLT_MIN.
        const bool tiny_possible = to_float && (buffered || two_n * sigma2 < 0x1p-74);
        constexpr std::size_t span = 256;
        double a2s[span], vns[Map ? span : 1], ks[Lmmse ? span : 1], spreads[Lmmse ? span : 1];
        std::size_t clamped = 0;
        auto roots = [&](auto look_below) {
            constexpr double bottom = decltype(look_below)::value ? std::numeric_limits<float>::min() : 0.0;
            for (std::size_t x0 = 0; x0 < nx; x0 += span) {
                const std::size_t len = std::min(span, nx - x0);
                if constexpr (buffered)
                    for (std::size_t e = 0; e < len; ++e) {
                        double var_n = 0.0, k = 0.0, spread = 0.0;
                        a2s[e] = a2_at(x0 + e, var_n, k, spread);
                        if constexpr (Map) vns[e] = var_n;
                        if constexpr (Lmmse) {
                            ks[e] = k;
                            spreads[e] = spread;
                        }
                    }
                double below = 0.0, over = 0.0, tiny = 0.0;
                NOISELAB_SIMD_ROOTS
                for (std::size_t e = 0; e < len; ++e) {
                    double var_n = sigma2, k = 0.0, spread = 0.0;
                    const double a2 = buffered ? a2s[e] : a2_at(x0 + e, var_n, k, spread);
                    const bool inside = Masked ? mk[static_cast<std::ptrdiff_t>(x0 + e) * mx] != 0 : true;
                    below += (inside & (a2 < 0.0)) ? 1.0 : 0.0;
                    double q = 0.5 * (a2 + std::fabs(a2));
                    if constexpr (Lmmse) {
                        // (a2 + h) / 2 where a2 >= 0, t / (2 (h - a2)) where a2 < 0 (no
                        // cancellation); the two agree at a2 = 0, and DBL_MIN keeps t / u
                        // finite where t = u = 0.
                        if constexpr (Map) var_n = vns[e];
                        const double t = var_n * spread_w(a2, var_n, ks[e], spreads[e]);
                        const double h = std::sqrt(a2 * a2 + t), u = h + std::fabs(a2);
                        const double p = 0.5 + 0.5 * std::copysign(1.0, a2);
                        q = 0.5 * (p * u + (1.0 - p) * (t / (u + std::numeric_limits<double>::min())));
                    }
                    over += q <= top ? 0.0 : 1.0;  // NaN too
                    if constexpr (decltype(look_below)::value) {
                        const double small = q < bottom ? q : 0.0;
                        tiny = small > tiny ? small : tiny;
                    }
                    store(x0 + e, root<R>(q, true));
                }
                clamped += static_cast<std::size_t>(below);
                if (over > 0.0 || tiny > 0.0)
                    for (std::size_t e = 0; e < len; ++e) {
                        double var_n = 0.0, k = 0.0, spread = 0.0;
                        const double a2 = a2_at(x0 + e, var_n, k, spread);
                        const double q = Lmmse ? smooth_root_arg_exact(a2, var_n, spread_w(a2, var_n, k, spread))
                                               : std::max(a2, 0.0);
                        store(x0 + e, root<R>(q, float_root_fits(q)));
                    }
            }
        };
        // (A double root has nothing to look for below: not compiled.)
        if constexpr (to_float) {
            if (tiny_possible) roots(std::true_type{});
            else roots(std::false_type{});
        } else {
            roots(std::false_type{});
        }
        st.clamped += clamped;
    }
};

/// The checks correct() and correct_stored() share (see correct()).
template <class T>
void check_correct(const ArrayView<const T>& in, const ArrayView<T>& out, double sigma,
                   const CorrectionOptions& opt) {
    check_view(in, "image");
    check_view(out, "output");
    check_same_shape(in, out, "output");
    check_mask(in, opt.mask);
    const bool map = opt.sigma_map.data != nullptr;
    if (map) check_same_shape(in, opt.sigma_map, "sigma_map");
    check_no_overlap(out, in, "the image");
    if (opt.mask.data != nullptr) check_no_overlap(out, opt.mask, "the mask");
    if (map) check_no_overlap(out, opt.sigma_map, "sigma_map");
    if (opt.coils < 1) throw std::invalid_argument("noiselab: coils must be >= 1, got 0");
    if (!map && !(sigma >= 0.0 && std::isfinite(sigma)))
        throw std::invalid_argument("noiselab: sigma must be finite and >= 0, got " + std::to_string(sigma));
    if (!map && !std::isfinite(2.0 * opt.coils * sigma * sigma))
        throw std::invalid_argument("noiselab: sigma is so large that 2 N sigma^2 overflows double");
}

/// The sweep of correct() (Stored = false) and correct_stored(), dispatched on the options'
/// compile-time switches: mask, method and sigma map.
template <bool Stored, class T>
CorrectionReport run_correct(const ArrayView<const T>& in, const ArrayView<T>& out, double sigma,
                             const Window& window, const CorrectionOptions& opt, const Conversion& conv) {
    const Geometry g(in, window);
    auto go = [&](auto masked, auto lmmse, auto has_map) -> CorrectionReport {
        constexpr bool M = decltype(masked)::value, L = decltype(lmmse)::value, S = decltype(has_map)::value;
        using Src = PowerSource<T, M, L, Stored>;
        using Sink = CorrectSink<T, M, L, S, Stored>;
        const Padded<const std::uint8_t> mask = M ? Padded<const std::uint8_t>(opt.mask) : Padded<const std::uint8_t>();
        Src src{Padded<const T>(in), mask, conv.to_magnitude};
        Sink sink{Padded<const T>(in),
                  Padded<T>(out),
                  mask,
                  S ? Padded<const double>(opt.sigma_map) : Padded<const double>(),
                  sigma * sigma,
                  static_cast<double>(opt.coils),
                  conv};
        return Sweep<Src::channels, Src, Sink>(g, src, sink).run(opt.threads);
    };
    using std::false_type, std::true_type;
    const bool map = opt.sigma_map.data != nullptr;
    const bool lmmse = opt.method == Correction::lmmse;
    auto with_map = [&](auto m, auto l) { return map ? go(m, l, true_type{}) : go(m, l, false_type{}); };
    auto with_lmmse = [&](auto m) { return lmmse ? with_map(m, true_type{}) : with_map(m, false_type{}); };
    return opt.mask.data != nullptr ? with_lmmse(true_type{}) : with_lmmse(false_type{});
}

}  // namespace detail

/// Corrects the noise bias of a magnitude image: out = sqrt(max(A^2, 0)) with A^2 from
/// `opt.method` (lmmse: its bias-corrected root, see Correction::lmmse), box means over `window` (scipy's reflect boundary), and `sigma` the
/// noise level (ignored when opt.sigma_map is set).
///
/// `in` and `out` have the same shape and distinct memory; `in` may also be a mutable
/// view (T is taken from `out`). The image is validated in the same pass: the report
/// counts NaN/inf, negative and zero voxels and the range, so the caller decides what is
/// an error. Throws std::invalid_argument for bad ranks, empty axes, window sizes < 1,
/// shape mismatches, an output that overlaps the image, mask or sigma_map in memory,
/// coils < 1, sigma < 0 / NaN, or a sigma so large that 2 N sigma^2 overflows double.
template <class T>
CorrectionReport correct(ArrayView<const detail::identity_t<T>> in, ArrayView<T> out, double sigma,
                         const Window& window, const CorrectionOptions& opt = {}) {
    static_assert(std::is_floating_point_v<T>, "noiselab::correct works on float or double");
    detail::check_correct(in, out, sigma, opt);
    return detail::run_correct<false>(in, out, sigma, window, opt, detail::Conversion{});
}

/// Options for correct_stored(): the correction's, and how stored values convert.
///
/// Each rescale array is null (the identity: x * 1 + 0 and y * 1 - 0 change no bit) or a 1-D
/// view of one value (for every voxel) or of one value per index s of the image's first
/// axis (a slice; 2-D to 4-D images), read once per row.
struct StoredOptions {
    /// Method, coils, mask, sigma map and threads, as for correct().
    CorrectionOptions correction{};
    /// The magnitude M of stored value v in slice s: m = double(v) * scale[s], then
    /// m += offset[s] (two roundings, no fused multiply-add).
    ArrayView<const double> scale{}, offset{};
    /// The stored value of corrected magnitude y: y * out_scale[s], then -= out_offset[s];
    /// for integer types then rounded to nearest, ties to even, and clipped to [lo, hi].
    ArrayView<const double> out_scale{}, out_offset{};
    /// Integer types: the clip bounds, integers in the type's range; infinite ones stand for
    /// the type's bounds. Floating-point types are neither rounded nor clipped, and take
    /// only the infinite defaults.
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    /// Round the corrected magnitude to float before it is converted, as correct<float>() on
    /// the magnitude would: for types float holds exactly (float, 8- and 16-bit integers)
    /// with no input rescale (scale and offset null).
    bool single = false;
};

namespace detail {

/// A StoredOptions rescale pair as a SliceAffine of image `in`; null entries take `one`
/// and `zero`, the values that leave x unchanged.
template <class T>
SliceAffine slice_affine(const ArrayView<const T>& in, const ArrayView<const double>& scale,
                         const ArrayView<const double>& offset, const double& one, const double& zero,
                         const char* names) {
    SliceAffine a;
    a.axis = 4 - static_cast<int>(in.ndim);
    auto take = [&](const ArrayView<const double>& v, const double& fallback, const double*& data,
                    std::ptrdiff_t& step) {
        data = &fallback;
        step = 0;
        if (v.data == nullptr) return;
        const bool one_value = v.ndim == 1 && v.shape[0] == 1;
        const bool per_slice = v.ndim == 1 && v.shape[0] == in.shape[0] && in.ndim >= 2;
        if (!one_value && !per_slice)
            throw std::invalid_argument(std::string("noiselab: ") + names +
                                        " must be 1-D with one value, or one per index of the image's first axis "
                                        "(2-D to 4-D images), got " + std::to_string(v.ndim) + "-D of " +
                                        std::to_string(v.ndim ? v.shape[0] : 0));
        data = v.data;
        step = one_value ? 0 : v.strides[0];
    };
    take(scale, one, a.scale, a.scale_step);
    take(offset, zero, a.offset, a.offset_step);
    return a;
}

}  // namespace detail

/// correct() on the magnitude of stored values, written back as stored values in one pass:
/// for each voxel of slice s (index of the first axis), m = double(v) * scale[s] + offset[s];
/// the correction of m as correct<double>() gives it (or correct<float>() with opt.single),
/// y; then y * out_scale[s] - out_offset[s], for integer T rounded to nearest (ties to even,
/// as std::nearbyint), clipped to [lo, hi] and cast to T. Voxels outside the mask are
/// converted from m likewise. Bit for bit numpy's `m = v.astype(float64); m *= scale; m +=
/// offset`, the correction, `y *= out_scale; y -= out_offset; rint; clip; astype`, with no
/// copy in double. The report validates the magnitudes m.
///
/// T is any of int8, uint8, int16, uint16, int32, uint32, float or double (taken from
/// `out`). Throws std::invalid_argument as correct() does, and for rescale arrays of another
/// length, bounds that are not integers in T's range or lo > hi, finite bounds for a
/// floating-point T, and opt.single where it does not apply.
template <class T>
CorrectionReport correct_stored(ArrayView<const detail::identity_t<T>> in, ArrayView<T> out, double sigma,
                                const Window& window, const StoredOptions& opt = {}) {
    static_assert(std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> ||
                      std::is_same_v<T, std::int16_t> || std::is_same_v<T, std::uint16_t> ||
                      std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t> ||
                      std::is_floating_point_v<T>,
                  "noiselab::correct_stored takes 8-, 16- and 32-bit integers, float or double");
    detail::check_correct(in, out, sigma, opt.correction);
    // x + (-0) is x for every x, -0 included (x + 0 turns -0 into +0); x - 0 is x too.
    static constexpr double one = 1.0, minus_zero = -0.0, zero = 0.0;
    detail::Conversion conv;
    conv.to_magnitude = detail::slice_affine(in, opt.scale, opt.offset, one, minus_zero, "scale and offset");
    conv.to_stored = detail::slice_affine(in, opt.out_scale, opt.out_offset, one, zero, "out_scale and out_offset");
    for (const auto* v : {&opt.scale, &opt.offset, &opt.out_scale, &opt.out_offset})
        if (v->data != nullptr) detail::check_no_overlap(out, *v, "a rescale array");
    if constexpr (std::is_integral_v<T>) {
        const double lowest = static_cast<double>(std::numeric_limits<T>::lowest());
        const double highest = static_cast<double>(std::numeric_limits<T>::max());
        conv.lo = std::isinf(opt.lo) && opt.lo < 0 ? lowest : opt.lo;
        conv.hi = std::isinf(opt.hi) && opt.hi > 0 ? highest : opt.hi;
        auto fits = [&](double b) { return b >= lowest && b <= highest && std::nearbyint(b) == b; };
        if (!fits(conv.lo) || !fits(conv.hi) || conv.lo > conv.hi)
            throw std::invalid_argument("noiselab: the clip bounds must be integers in the type's range with lo <= hi, got [" +
                                        std::to_string(opt.lo) + ", " + std::to_string(opt.hi) + "]");
    } else if (!(std::isinf(opt.lo) && opt.lo < 0 && std::isinf(opt.hi) && opt.hi > 0)) {
        throw std::invalid_argument("noiselab: floating-point stored values are not clipped: leave lo and hi infinite");
    }
    if (opt.single && (!detail::single_ok<T> || opt.scale.data != nullptr || opt.offset.data != nullptr))
        throw std::invalid_argument("noiselab: single precision needs a type float holds exactly (float, 8- or 16-bit "
                                    "integers) and no input rescale");
    conv.single = opt.single;
    return detail::run_correct<true>(in, out, sigma, window, opt.correction, conv);
}

}  // namespace noiselab
