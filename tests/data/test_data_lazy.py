"""StandardizedImages: uint8 pixels standardised on access, equal to converting the whole split."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.lazy import StandardizedImages, lookup_table
from models.data.preprocess import image_channel_stats, standardize_uint8_images


@pytest.mark.parametrize("channels", [1, 3])
def test_every_access_equals_the_whole_conversion(channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (50, 5, 4, channels), dtype=np.uint8)
    pixels.flags.writeable = False  # the loader's arrays are read-only
    index = np.array([3, 7, 7, 0, 49, 12, 30, 31, 2], np.int64)
    mean, std = image_channel_stats(pixels[index])
    want = standardize_uint8_images(pixels[index], mean, std)
    x = StandardizedImages(pixels, index, lookup_table(mean, std))
    assert x.shape == want.shape and len(x) == 9 and x.ndim == 4 and x.dtype == np.float32
    assert np.array_equal(x[np.array([4, 0, 4])], want[[4, 0, 4]])  # a batch, repeats allowed
    assert np.array_equal(x[2:7], want[2:7])  # an evaluation chunk
    assert np.array_equal(x[5], want[5])
    assert np.array_equal(x[:, 1], want[:, 1]) and np.array_equal(x[3, 2], want[3, 2])
    assert np.array_equal(np.asarray(x), want) and np.asarray(x).dtype == np.float32
    assert np.array_equal(x * 2.0, want * 2.0)  # operators and ufuncs see the float values
    assert np.isfinite(x).all() and x.mean() == pytest.approx(float(want.mean()))
    assert np.array_equal(np.concatenate([x, x[:2]]), np.concatenate([want, want[:2]]))
    assert x.nbytes_stored == index.nbytes  # it holds the index, not a float copy


def test_bad_inputs_name_what_is_wrong():
    lut = lookup_table(np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="uint8"):
        StandardizedImages(np.zeros((2, 3, 3, 1), np.float32), np.arange(2), lut)
    with pytest.raises(ValueError, match="lut"):
        StandardizedImages(np.zeros((2, 3, 3, 2), np.uint8), np.arange(2), lut)
