"""How to clean a series folder: every slice of every series, one output file per input file.

    python howto/howto_clean_series.py [FOLDER]

Without FOLDER a 6-slice phantom series is generated first (file names shuffled:
slices are sorted by ImagePositionPatient along the slice normal, not by name).
Outputs go to ./howto_clean_series/output/, with the input files' relative names.
"""

import sys
from pathlib import Path

from pydicom.uid import generate_uid

from mri_noiselab.dicom import clean_source, example_phantom, synthetic_mr_image, write_dataset
from mri_noiselab.roi import roi_mask

out = Path("howto_clean_series")

if len(sys.argv) > 1:
    folder = Path(sys.argv[1])
else:
    folder = out / "input"
    series = {"SeriesInstanceUID": generate_uid(), "StudyInstanceUID": generate_uid(), "FrameOfReferenceUID": generate_uid()}
    for k in range(6):
        _, noisy = example_phantom(sigma=20.0, seed=k)
        z = 5.0 * k
        ds = synthetic_mr_image(noisy, BitsStored=12, InstanceNumber=k + 1,
                                ImagePositionPatient=[-96.0, -96.0, z], SliceLocation=z, **series)
        write_dataset(ds, folder / f"IM{(5 * k) % 6:04d}.dcm")

# Background: two boxes in the air on every slice (a third range, S0:S1, would pick slices).
background = ["0:16,0:16", "112:128,0:16"]
report = clean_source(
    folder,
    out / "output",
    background=lambda stack: roi_mask(background, stack.shape),
    estimator="mle",
    method="moments",
    f_size=5,  # 5x5 within each slice
    qc=out / "qc.png",
)
for stack in report.volumes:  # a DICOM series' volumes are its stacks
    names = ", ".join(p.name for p in stack.paths)
    sigma = stack.result.derivation.sigma
    print(f"stack of {len(stack.paths)} slices ({names}): sigma = {sigma:.3f}")
print(f"wrote {len(report.written)} files to {out / 'output'}; {len(report.failures)} failed")
