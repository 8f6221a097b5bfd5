"""Dask: map_overlap equality with the in-memory correction, and batches on a LocalCluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import dask  # noqa: E402

import mri_noiselab as nl  # noqa: E402
from mri_noiselab import dask as nld  # noqa: E402
from mri_noiselab.cli import main  # noqa: E402
from mri_noiselab.batch import run_batch  # noqa: E402
from mri_noiselab.dicom import clean_source, read_file, synthetic_mr_image, write_dataset  # noqa: E402
from mri_noiselab.roi import roi_mask  # noqa: E402
from tests.conftest import rician  # noqa: E402


@pytest.fixture(autouse=True)
def _synchronous():
    # Blocks one after the other in this process: the equality tests need no threads.
    with dask.config.set(scheduler="synchronous"):
        yield


def volume(rng: np.random.Generator, shape: tuple[int, ...], integer: bool) -> np.ndarray:
    truth = np.zeros(shape)
    truth[tuple(slice(n // 4, 3 * n // 4) for n in shape)] = 60.0
    m = rician(truth, 10.0, rng)
    return np.rint(m).astype(np.float32) if integer else m


@pytest.mark.parametrize("lazy", [True, False], ids=["map_overlap", "direct"])
@pytest.mark.parametrize("chunks", [(7, 11, 5), (3, 4, 11), (23, 19, 11)])
@pytest.mark.parametrize("f_size", [2, 5, (4, 7, 3), (50, 3, 1)])
def test_blocks_equal_in_memory(rng, lazy, chunks, f_size):
    # Odd chunkings, even windows, windows longer than a chunk and than an axis (50 > 23: many
    # reflections); a dask array (map_overlap) and a NumPy array read block by block.
    x = volume(rng, (23, 19, 11), integer=True)
    image = da.from_array(x, chunks=chunks) if lazy else x
    for method in ("moments", "pointwise", "lmmse"):
        ref = nl.correct(x, 10.0, f_size=f_size, method=method)
        got = nld.correct(image, 10.0, f_size=f_size, method=method, chunks=chunks).compute()
        assert got.dtype == ref.dtype == np.float32
        if method == "lmmse":
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-5)
        else:  # integer-valued data: exact window sums, so the same bits
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("lazy", [True, False], ids=["map_overlap", "direct"])
@pytest.mark.parametrize("method", ["moments", "lmmse"])
def test_float64_equal_to_rounding(rng, method, lazy):
    x = volume(rng, (29, 31, 11), integer=False)
    ref = nl.correct(x, 10.0, f_size=6, method=method)
    image = da.from_array(x, chunks=(5, 8, 4)) if lazy else x
    got = nld.correct(image, 10.0, f_size=6, method=method, chunks=(5, 8, 4)).compute()
    assert got.dtype == np.float64
    # Near A = 0 the square root magnifies rounding of <M^2> - 2 sigma^2: bound it against sigma.
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9 * 10.0)


def test_dask_reflect_is_scipy_reflect(rng):
    # The premise of the boundary: dask's "reflect" padding is scipy's mode="reflect" (edge repeated).
    from scipy.ndimage import uniform_filter1d

    x = rng.random(23)
    padded = da.overlap.overlap(da.from_array(x, chunks=5), depth={0: 3}, boundary={0: "reflect"}).compute()
    np.testing.assert_array_equal(padded[:3], x[2::-1])
    np.testing.assert_array_equal(padded[-3:], x[:-4:-1])
    mean = np.convolve(np.concatenate([x[2::-1], x, x[:-4:-1]]), np.ones(6) / 6, mode="valid")[:23]
    np.testing.assert_allclose(mean, uniform_filter1d(x, 6, mode="reflect"), rtol=1e-12)


def test_sigma_per_volume_mask_and_depth(rng):
    x = volume(rng, (17, 19, 7, 5), integer=True)
    sigma = np.array([8.0, 9.0, 10.0, 11.0, 12.0])
    mask = rng.random(x.shape) > 0.2
    ref = nl.correct(x, sigma, f_size=6, mask=mask)
    for image in (da.from_array(x, chunks=(5, 7, 3, 2)), x):
        got = nld.correct(image, sigma, f_size=6, mask=mask, chunks=(5, 7, 3, 2))
        np.testing.assert_array_equal(got.compute(), ref)
    # A per-voxel sigma given as a dask array.
    sig_map = da.from_array(np.broadcast_to(sigma, x.shape), chunks=(4, 4, 4, 5))
    np.testing.assert_array_equal(nld.correct(x, sig_map, f_size=6, mask=mask).compute(), ref)
    assert nld.overlap_depth((6, 6, 6, 1)) == (3, 3, 3, 0)
    with pytest.raises(ValueError, match="per volume"):
        nld.correct(da.from_array(x), np.ones(3))
    bad = x.copy()
    bad[3, 3, 3, 3] = np.nan
    for image in (da.from_array(bad, chunks=6), bad):
        with pytest.raises(ValueError, match="NaN"):
            nld.correct(image, 10.0, chunks=6).compute()


def test_memmap_npy_round_trip(tmp_path, rng):
    x = volume(rng, (24, 20, 18), integer=True)
    np.save(tmp_path / "in.npy", x)
    src = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=x.shape)
    lazy = nld.correct(src, 10.0, f_size=5, chunks=(8, 7, 18))
    assert lazy.chunks == ((8, 8, 8), (7, 7, 6), (18,))
    da.store(lazy, out)
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), nl.correct(x, 10.0, f_size=5))


# ----------------------------------------------------------------------------- batches


def write_batch(folder: Path, rng: np.random.Generator, n: int = 6, broken: int = 3) -> list[Path]:
    """n single-file series; file number ``broken`` is damaged."""
    folder.mkdir()
    paths = []
    for i in range(n):
        truth = np.zeros((32, 32))
        truth[8:24, 8:24] = 200
        path = folder / f"im{i}.dcm"
        if i == broken:
            path.write_bytes(b"\0" * 128 + b"DICM" + b"damaged")
        else:
            write_dataset(synthetic_mr_image(np.rint(rician(truth, 10.0, rng)).astype(np.uint16)), path)
        paths.append(path)
    return paths


def pixels(path: Path) -> np.ndarray:
    return read_file(path).stored


def test_run_batch_serial_and_cluster_collect_failures(tmp_path):
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("item 2 is bad")
        return item * item

    items = [0, 1, 2, 3]
    for kwargs in ({}, {"workers": 2}):
        done: list[int] = []
        outcome = run_batch(work, items, on_done=done.append, paths_of=lambda i: [Path(f"f{i}")], **kwargs)
        assert outcome.results == [(0, 0), (1, 1), (3, 9)]
        assert [(f.path.name, f.message) for f in outcome.failures] == [("f2", "item 2 is bad")]
        assert sorted(done) == items
    with pytest.raises(ValueError, match="not both"):
        run_batch(work, items, workers=2, scheduler="tcp://127.0.0.1:1")


def test_dicom_batch_on_local_cluster_equals_serial(tmp_path, rng):
    write_batch(tmp_path / "in", rng)
    background = lambda stack: roi_mask(["0:6,0:6"], stack.shape)  # noqa: E731
    serial = clean_source(tmp_path / "in", tmp_path / "serial", background=background, f_size=5)
    seen: list[Path] = []
    parallel = clean_source(tmp_path / "in", tmp_path / "par", background=background, f_size=5,
                                      workers=2, on_file=seen.append)
    assert [f.path.name for f in parallel.failures] == [f.path.name for f in serial.failures] == ["im3.dcm"]
    names = sorted(p.name for p in parallel.written)
    assert names == sorted(p.name for p in serial.written) == ["im0.dcm", "im1.dcm", "im2.dcm", "im4.dcm", "im5.dcm"]
    for name in names:
        np.testing.assert_array_equal(pixels(tmp_path / "par" / name), pixels(tmp_path / "serial" / name))
    sigmas = {s.paths[0].name: s.result.derivation.sigma for s in serial.volumes}
    assert {s.paths[0].name: s.result.derivation.sigma for s in parallel.volumes} == sigmas
    assert sorted(p.name for p in seen) == names  # progress for every written file


def test_cli_workers(tmp_path, rng, capsys):
    write_batch(tmp_path / "in", rng, n=4, broken=1)
    code = main(["clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--roi", "0:6,0:6", "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.dcm", "im2.dcm", "im3.dcm"]
    assert "im1.dcm" in captured.err and "1 of 4 file(s) failed" in captured.err and "Traceback" not in captured.err
    assert main(["clean", str(tmp_path / "in"), "-o", str(tmp_path / "x"), "--workers", "2", "--scheduler", "tcp://a:1"]) == 2
