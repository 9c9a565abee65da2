"""take_rows: the same batch as numpy fancy indexing, whether gathered in one thread or split over several."""

import numpy as np
import pytest

from protege.datasets import gather
from protege.datasets.gather import take_rows


@pytest.mark.parametrize("frame_shape", [(3,), (128, 128, 3)], ids=["small", "threaded"])
@pytest.mark.parametrize("rows_shape", [(37,), (37, 2)], ids=["flat", "windows"])
def test_take_rows_equals_fancy_indexing(frame_shape, rows_shape, monkeypatch):
    monkeypatch.setattr(gather, "GATHER_WORKERS", 3)  # split even on a one-core machine
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (50, *frame_shape), dtype=np.uint8)
    rows = rng.integers(0, 50, rows_shape)
    assert (array[rows].nbytes >= gather.THREADED_BYTES) == (frame_shape != (3,))
    np.testing.assert_array_equal(take_rows(array, rows), array[rows])
    out = np.full((*rows_shape, *frame_shape), 7, np.uint8)
    assert take_rows(array, rows, out) is out
    np.testing.assert_array_equal(out, array[rows])
