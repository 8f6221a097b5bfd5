// The pybind11 module mri_noiselab._core: converts numpy arrays to noiselab views
// (no copies; strides honoured) and releases the GIL around every kernel. The same file
// is also built for x86-64-v3 (AVX2, FMA) as _core_v3; mri_noiselab._kernels picks one.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "noiselab/noiselab.hpp"

namespace py = pybind11;
namespace nl = noiselab;

namespace {

template <class T, class A>
nl::ArrayView<T> view_of(A& a, const char* what) {
    if (a.ndim() < 1 || a.ndim() > static_cast<py::ssize_t>(nl::max_ndim))
        throw py::value_error(std::string(what) + " must have 1 to 4 dimensions");
    nl::ArrayView<T> v;
    const void* raw = a.data();  // read-only arrays are fine: inputs are only read
    if (reinterpret_cast<std::uintptr_t>(raw) % alignof(T) != 0)
        throw py::value_error(std::string(what) + " is not aligned in memory: pass a copy (numpy.array(x))");
    v.data = static_cast<T*>(const_cast<void*>(raw));
    v.ndim = static_cast<std::size_t>(a.ndim());
    for (std::size_t d = 0; d < v.ndim; ++d) {
        const auto sd = static_cast<py::ssize_t>(d);
        if (a.strides(sd) % static_cast<py::ssize_t>(sizeof(T)) != 0)
            throw py::value_error(std::string(what) + " has strides that are not a multiple of its item size");
        v.shape[d] = static_cast<std::size_t>(a.shape(sd));
        v.strides[d] = a.strides(sd) / static_cast<py::ssize_t>(sizeof(T));
    }
    return v;
}

nl::ArrayView<const std::uint8_t> mask_view(const std::optional<py::array_t<std::uint8_t>>& mask) {
    return mask ? view_of<const std::uint8_t>(*mask, "mask") : nl::ArrayView<const std::uint8_t>{};
}

nl::Window to_window(const std::vector<std::size_t>& w, py::ssize_t ndim) {
    if (static_cast<py::ssize_t>(w.size()) != ndim)
        throw py::value_error("window needs one size per axis: got " + std::to_string(w.size()) + " for " +
                              std::to_string(ndim) + " axes");
    nl::Window out{};
    for (std::size_t d = 0; d < w.size(); ++d) out[d] = w[d];
    return out;
}

template <class T>
bool is(const py::array& a) {
    return py::isinstance<py::array_t<T, 0>>(a) && a.dtype().equal(py::dtype::of<T>());
}

[[noreturn]] void bad_dtype(const py::array& a) {
    throw py::type_error("the kernels take float32 or float64 arrays in native byte order, got " +
                         std::string(py::str(a.dtype())));
}

template <class T>
py::tuple box_moments_t(const py::array& x, const nl::Window& w, bool fourth,
                        const std::optional<py::array_t<std::uint8_t>>& mask, int threads) {
    auto in = view_of<const T>(x, "image");
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    py::array_t<double> m2(shape);
    std::optional<py::array_t<double>> m4;
    if (fourth) m4.emplace(shape);
    nl::BoxOptions opt;
    opt.mask = mask_view(mask);
    opt.threads = threads;
    auto v2 = view_of<double>(m2, "m2");
    auto v4 = m4 ? view_of<double>(*m4, "m4") : nl::ArrayView<double>{};
    {
        py::gil_scoped_release nogil;
        nl::box_moments(in, w, v2, v4, opt);
    }
    return py::make_tuple(m2, m4 ? py::object(*m4) : py::none());
}

template <class T>
py::tuple box_count_t(const py::array& x, const nl::Window& w, const py::array_t<std::uint8_t>& mask, int threads) {
    auto in = view_of<const T>(x, "image");
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    py::array_t<double> m2(shape);
    py::array_t<std::uint32_t> count(shape);
    nl::BoxOptions opt;
    opt.mask = view_of<const std::uint8_t>(mask, "mask");
    opt.count = view_of<std::uint32_t>(count, "count");
    opt.threads = threads;
    auto v2 = view_of<double>(m2, "m2");
    nl::BoxReport rep;
    {
        py::gil_scoped_release nogil;
        rep = nl::box_moments(in, w, v2, {}, opt);
    }
    return py::make_tuple(m2, count, rep.nonfinite, rep.negative);
}

using Table = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::vector<double> to_vector(const Table& t) { return std::vector<double>(t.data(), t.data() + t.size()); }

// A uint8 array the kernel writes into: never a converted copy, whose writes would be lost.
nl::ArrayView<std::uint8_t> out_view(const py::array& a) {
    if (!is<std::uint8_t>(a)) throw py::type_error("out must be a uint8 array");
    if (!a.writeable()) throw py::value_error("out is read-only");
    return view_of<std::uint8_t>(a, "out");
}

template <class T>
py::tuple masked_moments_t(const py::array& x, const py::array_t<std::uint8_t>& mask, int threads) {
    auto in = view_of<const T>(x, "values");
    auto mv = view_of<const std::uint8_t>(mask, "mask");
    nl::MaskedMoments s;
    {
        py::gil_scoped_release nogil;
        s = nl::masked_moments(in, mv, threads);
    }
    return py::make_tuple(s.n, s.max, s.sum_u, s.sum_u2, s.sum_u4, s.sum_sq, s.integers);
}

template <class T>
std::pair<py::array, nl::CorrectionReport> correct_t(const py::array& x, double sigma, const nl::Window& w,
                                                     const nl::CorrectionOptions& opt) {
    auto in = view_of<const T>(x, "image");
    py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    auto ov = view_of<T>(out, "output");
    nl::CorrectionReport rep;
    {
        py::gil_scoped_release nogil;
        rep = nl::correct(in, ov, sigma, w, opt);
    }
    return {out, rep};
}

// The arrays a stored-value correction reads besides the image, as views (null when absent).
struct StoredArrays {
    std::optional<py::array_t<std::uint8_t>> mask;
    std::optional<py::array_t<double>> sigma_map, scale, offset, out_scale, out_offset;
};

template <class T>
std::pair<py::array, nl::CorrectionReport> correct_stored_t(const py::array& x, double sigma, const nl::Window& w,
                                                            nl::StoredOptions opt, const StoredArrays& a) {
    auto in = view_of<const T>(x, "stored");
    opt.correction.mask = mask_view(a.mask);
    if (a.sigma_map) opt.correction.sigma_map = view_of<const double>(*a.sigma_map, "sigma_map");
    auto rescale = [](const std::optional<py::array_t<double>>& v, const char* what) {
        return v ? view_of<const double>(*v, what) : nl::ArrayView<const double>{};
    };
    opt.scale = rescale(a.scale, "scale");
    opt.offset = rescale(a.offset, "offset");
    opt.out_scale = rescale(a.out_scale, "out_scale");
    opt.out_offset = rescale(a.out_offset, "out_offset");
    py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    auto ov = view_of<T>(out, "output");
    nl::CorrectionReport rep;
    {
        py::gil_scoped_release nogil;
        rep = nl::correct_stored(in, ov, sigma, w, opt);
    }
    return {out, rep};
}

template <class T>
nl::SampleStats sample_stats_t(const py::array& x, const nl::SampleOptions& opt) {
    auto in = view_of<const T>(x, "background");
    py::gil_scoped_release nogil;
    return nl::sample_stats(in, opt);
}

nl::Correction correction(const std::string& method) {
    if (method == "moments") return nl::Correction::moments;
    if (method == "lmmse") return nl::Correction::lmmse;
    throw py::value_error("unknown correction '" + method + "': choose 'moments' or 'lmmse'");
}

nl::SigmaMethod sigma_method(const std::string& name) {
    if (name == "std") return nl::SigmaMethod::std_dev;
    if (name == "mle") return nl::SigmaMethod::mle;
    if (name == "mean") return nl::SigmaMethod::mean;
    throw py::value_error("unknown sigma method '" + name + "': choose 'mle', 'std' or 'mean'");
}

}  // namespace

#ifndef NOISELAB_MODULE
#define NOISELAB_MODULE _core
#endif

PYBIND11_MODULE(NOISELAB_MODULE, m) {
    m.doc() = "Compiled kernels of mri-noiselab (see the noiselab C++ headers).";
    m.attr("__version__") = NOISELAB_VERSION;
    m.def("has_openmp", &nl::has_openmp);
    m.def("cpu_levels", [] {
        // The x86-64 micro-architecture levels this CPU (and its OS's saved state) runs,
        // for the loader to pick the kernel build; none where the compiler cannot ask.
        std::vector<std::string> levels;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("x86-64-v3")) levels.emplace_back("x86-64-v3");
        if (__builtin_cpu_supports("x86-64-v4")) levels.emplace_back("x86-64-v4");
#endif
        return levels;
    });
    m.def("default_threads", &nl::default_threads);
    m.def("chi_beta", &nl::chi_beta, py::arg("coils"));
    m.def("chi_std_factor", &nl::chi_std_factor, py::arg("coils"));
    m.def("chi_mean_std_ratio", &nl::chi_mean_std_ratio, py::arg("coils"));

    m.def(
        "box_moments",
        [](const py::array& x, const std::vector<std::size_t>& window, bool fourth,
           const std::optional<py::array_t<std::uint8_t>>& mask, int threads) {
            const auto w = to_window(window, x.ndim());
            if (is<float>(x)) return box_moments_t<float>(x, w, fourth, mask, threads);
            if (is<double>(x)) return box_moments_t<double>(x, w, fourth, mask, threads);
            bad_dtype(x);
        },
        py::arg("x"), py::arg("window"), py::arg("fourth") = false, py::arg("mask") = py::none(),
        py::arg("threads") = 0);

    // The masked means with the count each divides by (uint32), and the NaN/inf and negative
    // voxels inside the mask, all from one sweep.
    m.def(
        "box_count",
        [](const py::array& x, const std::vector<std::size_t>& window, const py::array_t<std::uint8_t>& mask,
           int threads) {
            const auto w = to_window(window, x.ndim());
            if (is<float>(x)) return box_count_t<float>(x, w, mask, threads);
            if (is<double>(x)) return box_count_t<double>(x, w, mask, threads);
            bad_dtype(x);
        },
        py::arg("x"), py::arg("window"), py::arg("mask"), py::arg("threads") = 0);

    m.def(
        "band_select",
        [](const py::array_t<double>& values, const py::array_t<std::uint32_t>& index,
           const py::array_t<std::uint8_t>& mask, const Table& lo, const Table& hi, const Table& edges,
           const std::optional<py::array>& out, std::size_t collect, int threads) {
            nl::BandOptions opt;
            if (out) opt.out = out_view(*out);
            opt.edges = to_vector(edges);
            opt.collect = collect;
            opt.threads = threads;
            const auto v = view_of<const double>(values, "values");
            const auto ix = view_of<const std::uint32_t>(index, "index");
            const auto mv = view_of<const std::uint8_t>(mask, "mask");
            const auto l = to_vector(lo), h = to_vector(hi);
            nl::BandStats s;
            {
                py::gil_scoped_release nogil;
                s = nl::band_select(v, ix, mv, l, h, opt);
            }
            return py::make_tuple(s.n, s.min, s.max, py::array_t<std::size_t>(s.counts.size(), s.counts.data()),
                                  py::array_t<double>(s.collected.size(), s.collected.data()));
        },
        py::arg("values"), py::arg("index"), py::arg("mask"), py::arg("lo"), py::arg("hi"),
        py::arg("edges") = Table(0), py::arg("out") = py::none(), py::arg("collect") = 0, py::arg("threads") = 0);

    m.def(
        "masked_moments",
        [](const py::array& x, const py::array_t<std::uint8_t>& mask, int threads) {
            if (is<float>(x)) return masked_moments_t<float>(x, mask, threads);
            if (is<double>(x)) return masked_moments_t<double>(x, mask, threads);
            bad_dtype(x);
        },
        py::arg("values"), py::arg("mask"), py::arg("threads") = 0);

    // module_local: _core and _core_v3 register the same C++ types and may both be loaded. The
    // public report is mri_noiselab.CorrectionReport, one Python class whatever build is loaded;
    // this one documents, prints and pickles itself for callers of the kernels themselves.
    using Report = nl::CorrectionReport;
    using ReportState = std::tuple<std::size_t, std::size_t, std::size_t, std::size_t, std::size_t, double, double>;
    py::class_<Report>(m, "CorrectionReport", py::module_local(),
                       "What correct() saw while it ran: n voxels corrected (in the mask, if any); "
                       "nonfinite, negative and zeros input voxels; clamped voxels whose A^2 estimate was "
                       "negative and set to 0; min and max of the input.")
        .def_readonly("n", &Report::n, "voxels corrected (in the mask, if any)")
        .def_readonly("nonfinite", &Report::nonfinite, "NaN or infinite input voxels")
        .def_readonly("negative", &Report::negative, "negative input voxels")
        .def_readonly("zeros", &Report::zeros, "input voxels equal to 0")
        .def_readonly("clamped", &Report::clamped, "voxels whose A^2 estimate was negative and set to 0")
        .def_readonly("min", &Report::min, "smallest input voxel")
        .def_readonly("max", &Report::max, "largest input voxel")
        .def("__repr__",
             [](const Report& r) {
                 return py::str("CorrectionReport(n={}, nonfinite={}, negative={}, zeros={}, clamped={}, min={}, max={})")
                     .format(r.n, r.nonfinite, r.negative, r.zeros, r.clamped, r.min, r.max);
             })
        .def(py::pickle(
            [](const Report& r) { return ReportState{r.n, r.nonfinite, r.negative, r.zeros, r.clamped, r.min, r.max}; },
            [](const ReportState& t) {
                Report r;
                std::tie(r.n, r.nonfinite, r.negative, r.zeros, r.clamped, r.min, r.max) = t;
                return r;
            }));

    m.def(
        "correct",
        [](const py::array& x, double sigma, const std::vector<std::size_t>& window, const std::string& method,
           unsigned coils, const std::optional<py::array_t<std::uint8_t>>& mask,
           const std::optional<py::array_t<double>>& sigma_map, int threads) {
            nl::CorrectionOptions opt;
            opt.method = correction(method);
            opt.coils = coils;
            opt.mask = mask_view(mask);
            if (sigma_map) opt.sigma_map = view_of<const double>(*sigma_map, "sigma_map");
            opt.threads = threads;
            const auto w = to_window(window, x.ndim());
            if (is<float>(x)) return correct_t<float>(x, sigma, w, opt);
            if (is<double>(x)) return correct_t<double>(x, sigma, w, opt);
            bad_dtype(x);
        },
        py::arg("x"), py::arg("sigma"), py::arg("window"), py::arg("method") = "moments", py::arg("coils") = 1,
        py::arg("mask") = py::none(), py::arg("sigma_map") = py::none(), py::arg("threads") = 0);

    m.def(
        "correct_stored",
        [](const py::array& x, double sigma, const std::vector<std::size_t>& window, const std::string& method,
           unsigned coils, const std::optional<py::array_t<std::uint8_t>>& mask,
           const std::optional<py::array_t<double>>& sigma_map, int threads,
           const std::optional<py::array_t<double>>& scale, const std::optional<py::array_t<double>>& offset,
           const std::optional<py::array_t<double>>& out_scale, const std::optional<py::array_t<double>>& out_offset,
           double lo, double hi, bool single) {
            nl::StoredOptions opt;
            opt.correction.method = correction(method);
            opt.correction.coils = coils;
            opt.correction.threads = threads;
            opt.lo = lo;
            opt.hi = hi;
            opt.single = single;
            const StoredArrays arrays{mask, sigma_map, scale, offset, out_scale, out_offset};
            const auto w = to_window(window, x.ndim());
            if (is<std::int8_t>(x)) return correct_stored_t<std::int8_t>(x, sigma, w, opt, arrays);
            if (is<std::uint8_t>(x)) return correct_stored_t<std::uint8_t>(x, sigma, w, opt, arrays);
            if (is<std::int16_t>(x)) return correct_stored_t<std::int16_t>(x, sigma, w, opt, arrays);
            if (is<std::uint16_t>(x)) return correct_stored_t<std::uint16_t>(x, sigma, w, opt, arrays);
            if (is<std::int32_t>(x)) return correct_stored_t<std::int32_t>(x, sigma, w, opt, arrays);
            if (is<std::uint32_t>(x)) return correct_stored_t<std::uint32_t>(x, sigma, w, opt, arrays);
            if (is<float>(x)) return correct_stored_t<float>(x, sigma, w, opt, arrays);
            if (is<double>(x)) return correct_stored_t<double>(x, sigma, w, opt, arrays);
            throw py::type_error("correct_stored takes int8, uint8, int16, uint16, int32, uint32, float32 or float64 "
                                 "arrays in native byte order, got " + std::string(py::str(x.dtype())));
        },
        py::arg("x"), py::arg("sigma"), py::arg("window"), py::arg("method") = "moments", py::arg("coils") = 1,
        py::arg("mask") = py::none(), py::arg("sigma_map") = py::none(), py::arg("threads") = 0,
        py::arg("scale") = py::none(), py::arg("offset") = py::none(), py::arg("out_scale") = py::none(),
        py::arg("out_offset") = py::none(), py::arg("lo") = -std::numeric_limits<double>::infinity(),
        py::arg("hi") = std::numeric_limits<double>::infinity(), py::arg("single") = false);

    py::class_<nl::SampleStats>(m, "SampleStats", py::module_local())
        .def_readonly("n", &nl::SampleStats::n)
        .def_readonly("zeros_excluded", &nl::SampleStats::zeros_excluded)
        .def_readonly("nonfinite", &nl::SampleStats::nonfinite)
        .def_readonly("negative", &nl::SampleStats::negative)
        .def_readonly("zeros", &nl::SampleStats::zeros)
        .def_readonly("mean", &nl::SampleStats::mean)
        .def_readonly("std", &nl::SampleStats::std)
        .def_readonly("mean_sq", &nl::SampleStats::mean_sq)
        .def_readonly("min", &nl::SampleStats::min)
        .def_readonly("max", &nl::SampleStats::max);

    m.def(
        "sample_stats",
        [](const py::array& x, const std::optional<py::array_t<std::uint8_t>>& mask, bool exclude_zeros,
           int threads) {
            nl::SampleOptions opt;
            opt.mask = mask_view(mask);
            opt.exclude_zeros = exclude_zeros;
            opt.threads = threads;
            if (is<float>(x)) return sample_stats_t<float>(x, opt);
            if (is<double>(x)) return sample_stats_t<double>(x, opt);
            bad_dtype(x);
        },
        py::arg("x"), py::arg("mask") = py::none(), py::arg("exclude_zeros") = false, py::arg("threads") = 0);

    m.def(
        "sigma_from_stats",
        [](const nl::SampleStats& s, const std::string& method, unsigned coils) {
            const auto e = nl::estimate_sigma(s, sigma_method(method), coils);
            return std::make_tuple(e.sigma, e.ratio, e.expected_ratio);
        },
        py::arg("stats"), py::arg("method"), py::arg("coils") = 1);
}
