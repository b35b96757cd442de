"""Image axes that spatial_dims most likely misreads are refused, by every image estimator."""

import numpy as np
import pytest

from shiftattr.ratios import ImageStatsRatio
from shiftattr.ratios.image_axes import check_image_axes


@pytest.mark.parametrize(
    ("shape", "spatial_dims"),
    [((16, 16), 2), ((4, 16, 16), 2), ((16, 16, 16), 3), ((6, 16, 16), 3), ((2, 4, 4, 4), 3)],
)
def test_plausible_images_pass(shape, spatial_dims):
    check_image_axes("X", shape, spatial_dims)


@pytest.mark.parametrize(
    ("shape", "spatial_dims", "advice"),
    [
        ((16, 16), 3, "pass spatial_dims=2"),  # a 2D image under the default
        ((16, 16, 16), 2, "pass spatial_dims=3"),  # slices as channels
        ((9, 32, 32), 2, "more than 8 channels"),
        ((3, 16, 16), 3, "pass spatial_dims=2"),  # channels as slices
        ((1, 24, 24), 3, "pass spatial_dims=2"),
    ],
)
def test_misread_axes_are_refused_with_the_value_to_pass(shape, spatial_dims, advice):
    with pytest.raises(ValueError, match=advice):
        check_image_axes("X", shape, spatial_dims)


def test_the_image_statistics_refuse_2d_images_under_the_default_spatial_dims():
    """They were flattened into 256 columns of a tabular classifier, with no word."""
    rng = np.random.default_rng(0)
    src, tgt = ({"X": rng.normal(size=(20, 16, 16))} for _ in range(2))
    with pytest.raises(ValueError, match=r"node 'X' has cases of shape \(16, 16\).*spatial_dims=2"):
        ImageStatsRatio(random_state=0).fit(src, tgt)
    ImageStatsRatio(spatial_dims=2, random_state=0).fit(src, tgt)


def test_more_axes_than_channels_and_spatial_are_refused():
    with pytest.raises(ValueError, match=r"more axes than \(channels, \*spatial\).*spatial_dims=3"):
        check_image_axes("X", (2, 16, 16, 16), spatial_dims=2)
    check_image_axes("X", (2, 16, 16, 16), spatial_dims=3)
