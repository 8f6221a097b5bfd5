"""ROI text parsing, masks, unions and corner boxes."""

import numpy as np
import pytest

from mri_noiselab.roi import Roi, corner_rois, parse_roi, roi_mask


def test_parse_two_and_three_ranges_are_half_open_python_slices():
    roi = parse_roi(" 2:5 , 10:14 ")
    assert roi == Roi((2, 5), (10, 14))
    image = np.arange(20 * 20).reshape(20, 20)
    np.testing.assert_array_equal(image[roi.index(image.shape)], image[2:5, 10:14])
    roi3 = parse_roi("2:5,10:14,1:3")
    stack = np.arange(4 * 20 * 20).reshape(4, 20, 20)
    np.testing.assert_array_equal(stack[roi3.index(stack.shape)], stack[1:3, 2:5, 10:14])
    assert str(roi3) == "2:5,10:14,1:3"


def test_two_range_roi_applies_to_every_slice():
    mask = parse_roi("0:2,0:3").mask((3, 5, 5))
    assert mask.sum() == 3 * 2 * 3
    assert mask[:, :2, :3].all()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0:10", "malformed"),
        ("0:10,0:10,0:1,0:1", "malformed"),
        ("a:b,0:10", "malformed"),
        ("0-10,0:10", "malformed"),
        ("-1:5,0:10", "malformed"),
        ("0:10,", "malformed"),
        ("10:2,0:10", "reversed"),
        ("0:10,4:4", "empty"),
        ("0:10,0:10,3:3", "empty"),
    ],
)
def test_bad_roi_text_raises_a_clear_error(text, words):
    with pytest.raises(ValueError, match=words):
        parse_roi(text)


def test_out_of_bounds_names_the_axis_and_the_size():
    with pytest.raises(ValueError, match="rows range 0:80 is out of bounds: the image has 64 rows"):
        parse_roi("0:80,0:10").mask((64, 64))
    with pytest.raises(ValueError, match="columns"):
        parse_roi("0:10,60:65").mask((2, 64, 64))
    with pytest.raises(ValueError, match="the stack has 2 slices"):
        parse_roi("0:10,0:10,1:3").mask((2, 64, 64))
    with pytest.raises(ValueError, match="slice range but the image is 2-D"):
        parse_roi("0:10,0:10,0:1").mask((64, 64))


def test_union_of_boxes_counts_overlap_once():
    mask = roi_mask(["0:4,0:4", parse_roi("2:6,2:6")], (8, 8))
    assert mask.sum() == 16 + 16 - 4
    with pytest.raises(ValueError, match="no ROI"):
        roi_mask([], (8, 8))


def test_corner_boxes_sit_in_the_four_corners():
    boxes = corner_rois((3, 40, 60), 5)
    mask = roi_mask(boxes, (3, 40, 60))
    assert mask.sum() == 3 * 4 * 25
    for r, c in ((0, 0), (0, 59), (39, 0), (39, 59)):
        assert mask[:, r, c].all()
    assert not mask[:, 20, 30].any()
    assert corner_rois((64, 64))[0] == Roi((0, 8), (0, 8))
    with pytest.raises(ValueError, match="does not fit"):
        corner_rois((10, 10), 6)
