"""DICOM input and output: read magnitude images, write derived, corrected objects.

The data flow is: files -> :class:`DicomStack` (stored values, sorted slices;
:mod:`~mri_noiselab.dicom.read`, :mod:`~mri_noiselab.dicom.series`) ->
:meth:`DicomStack.magnitude` -> sigma and correction (:mod:`mri_noiselab.clean`) ->
:meth:`DicomStack.to_stored` -> :func:`derive_datasets` -> :func:`write_dataset`
(:mod:`~mri_noiselab.dicom.derive`). :func:`clean_source` runs the whole chain on a
file or a folder (:mod:`mri_noiselab.pipeline`, which serves NIfTI too).

This package re-exports the names of the DICOM workflow. Those that live above the
readers and writers (the cleaning, the pipeline, the demo) are imported when first
used, so that :mod:`mri_noiselab.pipeline` can import the readers without importing
itself back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mri_noiselab.derivation import PACKAGE, Derivation
from mri_noiselab.dicom.derive import (
    SERIES_NUMBER_OFFSET,
    SERIES_SUFFIX,
    derive_datasets,
    encode_dataset,
    file_dataset,
    synthetic_mr_image,
    write_dataset,
)
from mri_noiselab.dicom.eligibility import eligibility, is_own_output
from mri_noiselab.dicom.read import DicomStack, read_file, stored_range
from mri_noiselab.dicom.series import Skip, SourceScan, read_folder, read_source, read_stack
from mri_noiselab.errors import (
    CODECS_INSTALL,
    DecoderMissingError,
    DicomError,
    Failure,
    NoBackgroundError,
    NotEligibleError,
)
from mri_noiselab.errors import failure as series_failure

if TYPE_CHECKING:
    from mri_noiselab.clean import BackgroundFunction, CleanOptions, CleanResult
    from mri_noiselab.clean import SigmaGroup as SeriesSigma
    from mri_noiselab.clean import background_sigma
    from mri_noiselab.clean import clean_volume as clean_stack
    from mri_noiselab.clean import find_volume_background as find_stack_background
    from mri_noiselab.demo import ExampleReport, example_phantom, run_example
    from mri_noiselab.pipeline import BatchReport, SigmaReport, check_targets, clean_source, estimate_source_sigma
    from mri_noiselab.pipeline import VolumeReport as StackReport
    from mri_noiselab.pipeline import output_paths, qc_paths

# name here -> (module, name there)
_LATER = {
    "BackgroundFunction": ("mri_noiselab.clean", "BackgroundFunction"),
    "CleanOptions": ("mri_noiselab.clean", "CleanOptions"),
    "CleanResult": ("mri_noiselab.clean", "CleanResult"),
    "SeriesSigma": ("mri_noiselab.clean", "SigmaGroup"),
    "background_sigma": ("mri_noiselab.clean", "background_sigma"),
    "clean_stack": ("mri_noiselab.clean", "clean_volume"),
    "find_stack_background": ("mri_noiselab.clean", "find_volume_background"),
    "ExampleReport": ("mri_noiselab.demo", "ExampleReport"),
    "example_phantom": ("mri_noiselab.demo", "example_phantom"),
    "run_example": ("mri_noiselab.demo", "run_example"),
    "BatchReport": ("mri_noiselab.pipeline", "BatchReport"),
    "SigmaReport": ("mri_noiselab.pipeline", "SigmaReport"),
    "StackReport": ("mri_noiselab.pipeline", "VolumeReport"),
    "check_targets": ("mri_noiselab.pipeline", "check_targets"),
    "clean_source": ("mri_noiselab.pipeline", "clean_source"),
    "estimate_source_sigma": ("mri_noiselab.pipeline", "estimate_source_sigma"),
    "output_paths": ("mri_noiselab.pipeline", "output_paths"),
    "qc_paths": ("mri_noiselab.pipeline", "qc_paths"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LATER[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LATER))


__all__ = [
    "CODECS_INSTALL",
    "PACKAGE",
    "SERIES_NUMBER_OFFSET",
    "SERIES_SUFFIX",
    "BackgroundFunction",
    "BatchReport",
    "CleanOptions",
    "CleanResult",
    "DecoderMissingError",
    "Derivation",
    "DicomError",
    "DicomStack",
    "ExampleReport",
    "Failure",
    "NoBackgroundError",
    "NotEligibleError",
    "SeriesSigma",
    "SigmaReport",
    "Skip",
    "SourceScan",
    "StackReport",
    "background_sigma",
    "check_targets",
    "clean_source",
    "clean_stack",
    "derive_datasets",
    "eligibility",
    "encode_dataset",
    "estimate_source_sigma",
    "example_phantom",
    "file_dataset",
    "find_stack_background",
    "is_own_output",
    "output_paths",
    "qc_paths",
    "read_file",
    "read_folder",
    "read_source",
    "read_stack",
    "run_example",
    "series_failure",
    "stored_range",
    "synthetic_mr_image",
    "write_dataset",
]
