// Per-voxel steps of an automatic background search, as kernels: which voxels' local
// statistic lies in a band that depends on the window's voxel count (with the histogram of
// the ones that do), and the moments of the image over the voxels chosen.
//
// Both visit the rows of a strided view in parallel and reduce only integers, extrema or
// sums in a fixed tree, so their results are the same for any thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "noiselab/box_moments.hpp"
#include "noiselab/view.hpp"

// Asks for a vectorised loop with these reductions where OpenMP (or -fopenmp-simd) is on.
#if defined(_OPENMP) && _OPENMP >= 201307  // OpenMP 4.0: MSVC's OpenMP 2.0 has no `omp simd`
#define NOISELAB_SIMD_RANGE _Pragma("omp simd reduction(+ : n, broken) reduction(max : hi)")
#else
#define NOISELAB_SIMD_RANGE
#endif

namespace noiselab {

/// Options for band_select().
struct BandOptions {
    /// Where data is non-null: 1 at the voxels that pass, 0 elsewhere. Same shape as the values.
    ArrayView<std::uint8_t> out{};
    /// Strictly increasing finite boundaries: BandStats::counts[j] counts the voxels that pass
    /// with edges[j - 1] <= value < edges[j] (edges[-1] = -inf, edges[m] = +inf).
    std::vector<double> edges;
    /// Up to this many of the passing values that lie in the odd intervals of the edges
    /// (edges[2i] <= value < edges[2i + 1]) are returned in BandStats::collected.
    std::size_t collect = 0;
    /// Threads; 0 uses OpenMP's default. Results are the same for any value.
    int threads = 0;
};

/// What band_select() found.
struct BandStats {
    std::size_t n = 0;  ///< voxels that pass
    double min = std::numeric_limits<double>::infinity();   ///< their smallest value
    double max = -std::numeric_limits<double>::infinity();  ///< their largest value
    std::vector<std::size_t> counts;  ///< edges.size() + 1 intervals (see BandOptions::edges)
    /// The passing values in the odd intervals, sorted; empty when there are more than
    /// BandOptions::collect of them.
    std::vector<double> collected;
};

/// Sums over the in-mask voxels of an image, in numpy's pairwise order (see masked_moments()).
struct MaskedMoments {
    std::size_t n = 0;  ///< in-mask voxels
    double max = -std::numeric_limits<double>::infinity();  ///< their largest value
    double sum_u = 0.0, sum_u2 = 0.0, sum_u4 = 0.0;  ///< of u, u^2, u^4 with u = value / max
    double sum_sq = 0.0;  ///< of value^2
    bool integers = true;  ///< every value is a whole number
};

namespace detail {

inline int row_threads(int threads, std::size_t blocks) {
    const int nt = threads > 0 ? threads : default_threads();
    return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(nt), blocks)));
}

inline std::array<std::size_t, 3> row_index(const std::array<std::size_t, 4>& shape, std::size_t r) {
    return {r / (shape[1] * shape[2]), (r / shape[2]) % shape[1], r % shape[2]};
}

/// f(thread, i) for i in [0, n), in parallel, i taken in runs of `run`.
template <class F>
void for_each(std::size_t n, std::size_t run, int threads, F&& f) {
    const int nt = row_threads(threads, (n + run - 1) / run);
    const auto ns = static_cast<std::ptrdiff_t>(n);
    const auto rs = static_cast<std::ptrdiff_t>(run);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, rs)
#endif
    for (std::ptrdiff_t i = 0; i < ns; ++i) {
#ifdef _OPENMP
        const auto t = static_cast<std::size_t>(omp_get_thread_num());
#else
        const std::size_t t = 0;
#endif
        f(t, static_cast<std::size_t>(i));
    }
    (void)nt, (void)rs;
}

/// The rows (all axes but the last) of a padded 4-D shape, in parallel: f(thread, row index).
template <class F>
void for_rows(const std::array<std::size_t, 4>& shape, int threads, F&& f) {
    for_each(shape[0] * shape[1] * shape[2], 1024, threads,
             [&](std::size_t t, std::size_t r) { f(t, row_index(shape, r)); });
}

/// Threads that for_each over n items in runs of `run` uses: one scratch per thread.
inline std::size_t scratch_count(int threads, std::size_t n, std::size_t run) {
    return static_cast<std::size_t>(row_threads(threads, (n + run - 1) / run));
}

/// The interval of a value among sorted edges (how many edges are <= v), through a table
/// on the top bits of positive doubles, whose order is that of their bit patterns: a
/// bucket spans 1/4096 of an octave, so a value is rarely more than a step from its interval.
class EdgeLookup {
public:
    explicit EdgeLookup(const std::vector<double>& edges) : e_(edges) {
        for (std::size_t j = 0; j < e_.size(); ++j)
            if (!std::isfinite(e_[j]) || (j > 0 && !(e_[j] > e_[j - 1])))
                throw std::invalid_argument("noiselab: histogram edges must be finite and strictly increasing");
        m_ = e_.size();
        e_.push_back(std::numeric_limits<double>::infinity());  // a sentinel: no value passes it
        if (m_ == 0 || !(e_.front() > 0.0)) return;  // binary search
        const std::uint64_t k0 = key(e_.front()), k1 = key(e_[m_ - 1]);
        if (k1 - k0 > (std::uint64_t{1} << 20) || m_ >= (std::size_t{1} << 30)) return;
        first_ = k0;
        table_.assign(static_cast<std::size_t>(k1 - k0 + 1), 0);
        std::size_t j = 0;
        for (std::size_t k = 0; k < table_.size(); ++k) {
            while (j < m_ && key(e_[j]) < k0 + k) ++j;
            const bool split = j < m_ && key(e_[j]) == k0 + k;  // an edge inside the bucket
            table_[k] = static_cast<std::uint32_t>(2 * j + split);
        }
    }

    std::size_t operator()(double v) const {
        if (!(v >= e_.front())) return 0;  // NaN too
        if (v >= e_[m_ - 1]) return m_;
        if (table_.empty())
            return static_cast<std::size_t>(std::upper_bound(e_.begin(), e_.begin() + static_cast<std::ptrdiff_t>(m_), v) -
                                            e_.begin());
        const std::uint32_t t = table_[static_cast<std::size_t>(key(v) - first_)];
        std::size_t j = t >> 1;
        if ((t & 1) != 0) {  // an edge in the bucket; the sentinel ends the loop
            while (e_[j] <= v) ++j;
        }
        return j;
    }

    std::size_t size() const { return m_; }

private:
    static std::uint64_t key(double v) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &v, sizeof bits);
        return bits >> 40;  // sign, exponent and the top 12 bits of the mantissa
    }

    std::vector<double> e_;
    std::size_t m_ = 0;
    std::uint64_t first_ = 0;
    std::vector<std::uint32_t> table_;  // per bucket: the edges below its first value
};

inline constexpr std::size_t pairwise_leaf = 128;

inline std::size_t pairwise_split(std::size_t n) {
    std::size_t n2 = n / 2;
    return n2 - n2 % 8;
}

struct Sums4 {
    double u = 0.0, u2 = 0.0, u4 = 0.0, sq = 0.0;
};

inline Sums4 operator+(const Sums4& a, const Sums4& b) { return {a.u + b.u, a.u2 + b.u2, a.u4 + b.u4, a.sq + b.sq}; }

/// The in-mask values of a view in C order, from any position, handed out in runs through
/// a buffer that stretches of rows are packed into (branch-free: every value is written,
/// the next one overwrites it unless the mask keeps it).
/// Voxels packed at a time, and the stretch of a row whose in-mask voxels are counted
/// together (where a summation node can start looking).
inline constexpr std::size_t chunk = 4096;

template <class T>
class MaskedCursor {
public:
    MaskedCursor(const Padded<const T>& in, const Padded<const std::uint8_t>& mask, std::size_t row, std::size_t x,
                 std::size_t skip)
        : in_(in), mask_(mask), row_(row), x_(x), buf_(chunk + pairwise_leaf) {
        while (skip > 0 && pack()) {
            const std::size_t drop = std::min(skip, end_);
            std::copy(buf_.begin() + static_cast<std::ptrdiff_t>(drop), buf_.begin() + static_cast<std::ptrdiff_t>(end_),
                      buf_.begin());
            end_ -= drop;
            skip -= drop;
        }
    }

    /// The next n <= pairwise_leaf values, contiguous.
    const double* take(std::size_t n) {
        if (end_ - head_ < n) {
            std::copy(buf_.begin() + static_cast<std::ptrdiff_t>(head_), buf_.begin() + static_cast<std::ptrdiff_t>(end_),
                      buf_.begin());
            end_ -= head_;
            head_ = 0;
            while (end_ < n && pack()) {
            }
        }
        head_ += n;
        return buf_.data() + head_ - n;
    }

private:
    // Packs up to `chunk` more voxels of the current row (or the next one) after end_;
    // false when the rows have run out.
    bool pack() {
        const std::size_t nx = in_.shape[3], rows = in_.shape[0] * in_.shape[1] * in_.shape[2];
        if (x_ == nx) {
            ++row_;
            x_ = 0;
        }
        if (row_ >= rows) return false;
        const auto i = row_index(in_.shape, row_);
        const T* p = in_.row(i);
        const std::uint8_t* m = mask_.row(i);
        const std::ptrdiff_t px = in_.xstride(), mx = mask_.xstride();
        const std::size_t len = std::min(chunk, nx - x_);
        double* out = buf_.data() + end_;
        std::size_t k = 0;
        for (std::size_t x = x_; x < x_ + len; ++x) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            out[k] = static_cast<double>(p[xi * px]);
            k += m[xi * mx] != 0;
        }
        x_ += len;
        end_ += k;
        return true;
    }

    const Padded<const T>& in_;
    const Padded<const std::uint8_t>& mask_;
    std::size_t row_, x_ = 0;
    std::vector<double> buf_;
    std::size_t head_ = 0, end_ = 0;
};

/// A leaf of numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src, n <= 128):
/// fewer than 8 values one after the other, else 8 accumulators and the rest after them.
/// For u = v / scale, u^2, u^4 and v^2 at once, each made as numpy makes its array
/// (u * u, then u2 * u2; v * v).
inline void add_value(Sums4& s, double v, double scale) {
    const double u = v / scale, u2 = u * u;
    s.u += u;
    s.u2 += u2;
    s.u4 += u2 * u2;
    s.sq += v * v;
}

inline Sums4 leaf_block(const double* v, std::size_t n, double scale) {
    Sums4 s;
    if (n < 8) {
        for (std::size_t i = 0; i < n; ++i) add_value(s, v[i], scale);
        return s;
    }
    double r1[8], r2[8], r4[8], rq[8];
    for (std::size_t j = 0; j < 8; ++j) {
        const double u = v[j] / scale;
        r1[j] = u;
        r2[j] = u * u;
        r4[j] = r2[j] * r2[j];
        rq[j] = v[j] * v[j];
    }
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
        for (std::size_t j = 0; j < 8; ++j) {
            const double u = v[i + j] / scale, u2 = u * u;
            r1[j] += u;
            r2[j] += u2;
            r4[j] += u2 * u2;
            rq[j] += v[i + j] * v[i + j];
        }
    auto total = [](const double* r) { return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])); };
    s = {total(r1), total(r2), total(r4), total(rq)};
    for (; i < n; ++i) add_value(s, v[i], scale);
    return s;
}

/// numpy's pairwise summation of the next n values of `cur`: runs longer than 128 split in
/// halves rounded down to a multiple of 8, the left half first.
template <class T>
Sums4 pairwise_sums(MaskedCursor<T>& cur, std::size_t n, double scale) {
    if (n <= pairwise_leaf) return leaf_block(cur.take(n), n, scale);
    const std::size_t n2 = pairwise_split(n);
    const Sums4 left = pairwise_sums(cur, n2, scale);
    return left + pairwise_sums(cur, n - n2, scale);
}

// The nodes of the pairwise tree of n values that are at most `size` long, left to right.
inline void pairwise_tasks(std::size_t first, std::size_t n, std::size_t size, std::vector<std::array<std::size_t, 2>>& out) {
    if (n <= size) {
        out.push_back({first, n});
        return;
    }
    const std::size_t n2 = pairwise_split(n);
    pairwise_tasks(first, n2, size, out);
    pairwise_tasks(first + n2, n - n2, size, out);
}

// Adds the task sums up the tree above them, as pairwise_sums would have.
inline Sums4 pairwise_combine(std::size_t n, std::size_t size, const std::vector<Sums4>& done, std::size_t& next) {
    if (n <= size) return done[next++];
    const std::size_t n2 = pairwise_split(n);
    const Sums4 left = pairwise_combine(n2, size, done, next);
    return left + pairwise_combine(n - n2, size, done, next);
}

}  // namespace detail

namespace detail {

struct BandPart {
    std::size_t n = 0, beyond = 0;
    double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
    std::vector<std::size_t> counts;
    std::vector<double> collected;
};

// One row of band_select: the test, its pass flags to `po` (the output, or a row of
// scratch for the histogram), then the histogram of the values that pass. Branches: in
// images, neighbours mostly take the same ones (and a vectorised form, with the gathers
// from the tables, runs slower). Running values are locals: stores through uint8_t* may
// alias anything.
template <bool Unit>
NOISELAB_NOINLINE void band_row(const double* pv, std::ptrdiff_t sv, const std::uint32_t* pi, std::ptrdiff_t si,
                                const std::uint8_t* pm, std::ptrdiff_t sm, std::uint8_t* po, std::ptrdiff_t so,
                                std::size_t nx, const double* lo, const double* hi, std::size_t ntab,
                                BandPart& part) {
    if constexpr (Unit) sv = si = sm = so = 1;
    std::size_t n = 0, beyond = 0;
    double mn = part.min, mx = part.max;
    for (std::size_t x = 0; x < nx; ++x) {
        const auto xi = static_cast<std::ptrdiff_t>(x);
        std::uint8_t pass = 0;
        if (pm[xi * sm] != 0) {
            const std::size_t k = pi[xi * si];
            if (k < ntab) {
                const double a = pv[xi * sv];
                if (lo[k] <= a && a <= hi[k]) {
                    pass = 1;
                    ++n;
                    mn = a < mn ? a : mn;
                    mx = a > mx ? a : mx;
                }
            } else {
                ++beyond;
            }
        }
        po[xi * so] = pass;
    }
    part.n += n;
    part.beyond += beyond;
    part.min = mn;
    part.max = mx;
}

// Neighbours mostly fall in one bin: counting them in `ways` interleaved histograms spares
// each increment the wait for the one before.
inline constexpr std::size_t ways = 4;

inline void band_histogram(const double* pv, std::ptrdiff_t sv, const std::uint8_t* pass, std::size_t nx,
                           const EdgeLookup& bin, std::size_t collect, BandPart& part) {
    std::size_t* counts = part.counts.data();
    const std::size_t stride = bin.size() + 1;
    for (std::size_t x = 0; x < nx; ++x) {
        if (pass[x] == 0) continue;
        const double a = pv[static_cast<std::ptrdiff_t>(x) * sv];
        const std::size_t j = bin(a);
        ++counts[(x % ways) * stride + j];
        if ((j & 1) != 0 && part.collected.size() <= collect) part.collected.push_back(a);
    }
}

}  // namespace detail

/// The voxels whose value lies in a band looked up by a per-voxel index (such as the number
/// of voxels a window held): voxel i passes when mask[i] != 0 and
/// lo[index[i]] <= values[i] <= hi[index[i]]. Returns their number, range and histogram
/// over `opt.edges`; writes the pass mask to `opt.out` when given.
///
/// Throws std::invalid_argument for views whose shapes differ, tables of different or zero
/// length, an index beyond the tables at an in-mask voxel, or edges that are not finite and
/// strictly increasing.
inline BandStats band_select(ArrayView<const double> values, ArrayView<const std::uint32_t> index,
                             ArrayView<const std::uint8_t> mask, const std::vector<double>& lo,
                             const std::vector<double>& hi, const BandOptions& opt = {}) {
    detail::check_view(values, "values");
    detail::check_same_shape(values, index, "index");
    detail::check_same_shape(values, mask, "mask");
    const bool write = opt.out.data != nullptr;
    if (write) detail::check_same_shape(values, opt.out, "output");
    if (lo.size() != hi.size() || lo.empty())
        throw std::invalid_argument("noiselab: band tables must have the same, non-zero length");
    const detail::EdgeLookup bin(opt.edges);
    const detail::Padded<const double> v(values);
    const detail::Padded<const std::uint32_t> ix(index);
    const detail::Padded<const std::uint8_t> mk(mask);
    const detail::Padded<std::uint8_t> out(write ? opt.out : ArrayView<std::uint8_t>{});
    const bool hist = !opt.edges.empty();
    const bool unit = v.xstride() == 1 && ix.xstride() == 1 && mk.xstride() == 1;
    const std::size_t rows = v.shape[0] * v.shape[1] * v.shape[2];
    std::vector<detail::BandPart> parts(detail::scratch_count(opt.threads, rows, 1024));
    for (auto& p : parts) {
        p.counts.assign(hist ? detail::ways * (opt.edges.size() + 1) : 0, 0);
        p.collected.reserve(hist ? std::min<std::size_t>(opt.collect + 1, 1024) : 0);
    }
    const std::size_t nx = v.shape[3];
    std::vector<std::vector<std::uint8_t>> scratch(parts.size(), std::vector<std::uint8_t>(nx));
    detail::for_rows(v.shape, opt.threads, [&](std::size_t t, const std::array<std::size_t, 3>& i) {
        std::uint8_t* po = write ? out.row(i) : scratch[t].data();
        const std::ptrdiff_t so = write ? out.xstride() : 1;
        if (unit && so == 1)
            detail::band_row<true>(v.row(i), 1, ix.row(i), 1, mk.row(i), 1, po, 1, nx, lo.data(), hi.data(), lo.size(),
                                   parts[t]);
        else
            detail::band_row<false>(v.row(i), v.xstride(), ix.row(i), ix.xstride(), mk.row(i), mk.xstride(), po, so, nx,
                                    lo.data(), hi.data(), lo.size(), parts[t]);
        if (!hist) return;
        if (so != 1) {  // the histogram reads the flags in a row of its own
            for (std::size_t x = 0; x < nx; ++x) scratch[t][x] = po[static_cast<std::ptrdiff_t>(x) * so];
            po = scratch[t].data();
        }
        detail::band_histogram(v.row(i), v.xstride(), po, nx, bin, opt.collect, parts[t]);
    });
    BandStats s;
    s.counts.assign(hist ? opt.edges.size() + 1 : 0, 0);
    std::size_t beyond = 0, odd = 0;
    for (const auto& p : parts) {
        s.n += p.n;
        beyond += p.beyond;
        s.min = std::min(s.min, p.min);
        s.max = std::max(s.max, p.max);
        for (std::size_t j = 0; j < p.counts.size(); ++j) s.counts[j % s.counts.size()] += p.counts[j];
    }
    if (beyond > 0)
        throw std::invalid_argument("noiselab: " + std::to_string(beyond) + " in-mask voxels have an index beyond the " +
                                    std::to_string(lo.size()) + " entries of the band tables");
    for (std::size_t j = 1; j < s.counts.size(); j += 2) odd += s.counts[j];
    if (odd <= opt.collect) {
        for (const auto& p : parts) s.collected.insert(s.collected.end(), p.collected.begin(), p.collected.end());
        std::sort(s.collected.begin(), s.collected.end());
    }
    return s;
}

/// Count, maximum and sums of u = value / max, u^2, u^4 and value^2 over the in-mask voxels
/// of `values`, and whether they are all whole numbers.
///
/// Each sum adds the in-mask values in C order as numpy's pairwise summation adds the 1-D
/// array values[mask] (blocks of at most 128 values in 8 accumulators, longer runs split in
/// halves rounded down to a multiple of 8), with the same operations for u: sum_u / n is
/// numpy.mean(values[mask] / values[mask].max()) to the bit. Subtrees of the summation run in
/// parallel; the tree does not depend on the thread count.
template <class T>
MaskedMoments masked_moments(ArrayView<const T> values, ArrayView<const std::uint8_t> mask, int threads = 0) {
    detail::check_view(values, "values");
    detail::check_view(mask, "mask");
    detail::check_same_shape(values, mask, "mask");
    const detail::Padded<const T> in(values);
    const detail::Padded<const std::uint8_t> mk(mask);
    const std::size_t nx = in.shape[3];
    const std::size_t rows = in.shape[0] * in.shape[1] * in.shape[2];
    // First pass: the count of each stretch of `chunk` voxels of a row (where the summation
    // tree's nodes start), the maximum (the scale of u) and whether the values are whole.
    const std::size_t per_row = (nx + detail::chunk - 1) / detail::chunk, stretches = rows * per_row;
    std::vector<std::size_t> count(stretches, 0);
    struct Part {
        double max = -std::numeric_limits<double>::infinity();
        bool integers = true;
    };
    std::vector<Part> parts(detail::scratch_count(threads, stretches, 256));
    // Unit strides known at compile time let the loop vectorise.
    auto range = [&](auto unit, std::size_t t, std::size_t k) {
        const auto i = detail::row_index(in.shape, k / per_row);
        const std::size_t x0 = (k % per_row) * detail::chunk, x1 = std::min(nx, x0 + detail::chunk);
        const T* p = in.row(i);
        const std::uint8_t* m = mk.row(i);
        const std::ptrdiff_t px = decltype(unit)::value ? 1 : in.xstride();
        const std::ptrdiff_t mx = decltype(unit)::value ? 1 : mk.xstride();
        std::size_t n = 0, broken = 0;  // a count, not a bool: bool reductions do not vectorise
        double hi = parts[t].max;
        NOISELAB_SIMD_RANGE
        for (std::size_t x = x0; x < x1; ++x) {
            const auto xi = static_cast<std::ptrdiff_t>(x);
            const bool inside = m[xi * mx] != 0;
            const double a = static_cast<double>(p[xi * px]);
            n += inside;
            hi = std::max(hi, inside ? a : -std::numeric_limits<double>::infinity());
            broken += inside & (a != std::floor(a));
        }
        count[k] = n;
        parts[t].max = hi;
        parts[t].integers = parts[t].integers && broken == 0;
    };
    const bool unit = in.xstride() == 1 && mk.xstride() == 1;
    detail::for_each(stretches, 256, threads, [&](std::size_t t, std::size_t k) {
        if (unit) range(std::true_type{}, t, k);
        else range(std::false_type{}, t, k);
    });
    MaskedMoments s;
    for (const auto& p : parts) {
        s.max = std::max(s.max, p.max);
        s.integers = s.integers && p.integers;
    }
    std::vector<std::size_t> start(stretches + 1, 0);  // in-mask voxels before each stretch
    for (std::size_t k = 0; k < stretches; ++k) start[k + 1] = start[k] + count[k];
    s.n = start[stretches];
    if (s.n == 0) return s;

    // Second pass: the summation tree, cut into nodes of at most `size` values (a function
    // of n alone) that threads take in any order, then added up the tree.
    const std::size_t size = std::max<std::size_t>(4096, s.n / 64);
    std::vector<std::array<std::size_t, 2>> tasks;
    detail::pairwise_tasks(0, s.n, size, tasks);
    std::vector<detail::Sums4> done(tasks.size());
    const int nt = detail::row_threads(threads, tasks.size());
    const auto ntasks = static_cast<std::ptrdiff_t>(tasks.size());
    const double scale = s.max;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (std::ptrdiff_t k = 0; k < ntasks; ++k) {
        const auto& task = tasks[static_cast<std::size_t>(k)];
        // The stretch holding in-mask voxel task[0]: the last that starts at or before it.
        const auto it = std::upper_bound(start.begin(), start.end(), task[0]) - 1;
        const auto k0 = static_cast<std::size_t>(it - start.begin());
        detail::MaskedCursor<T> cur(in, mk, k0 / per_row, (k0 % per_row) * detail::chunk, task[0] - *it);
        done[static_cast<std::size_t>(k)] = detail::pairwise_sums(cur, task[1], scale);
    }
    (void)nt;
    std::size_t next = 0;
    const detail::Sums4 total = detail::pairwise_combine(s.n, size, done, next);
    s.sum_u = total.u;
    s.sum_u2 = total.u2;
    s.sum_u4 = total.u4;
    s.sum_sq = total.sq;
    return s;
}

}  // namespace noiselab
