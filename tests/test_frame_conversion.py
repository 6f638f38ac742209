"""uint8/uint16 frames <-> float tensors in [0, 1]: one conversion each way (``emavfi.imageio``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emavfi.imageio import frames_to_tensor, tensor_to_frames, to_uint8


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_level_round_trips(dtype):
    top = np.iinfo(dtype).max
    levels = np.arange(0, top + 1, max(1, top // 4095), dtype=dtype)
    frames = np.stack([levels] * 3, axis=-1)[None]  # (1, N, 3): H = 1, W = N
    tensor = frames_to_tensor(frames)
    assert tensor.shape == (3, 1, len(levels)) and tensor.dtype == torch.float32
    assert float(tensor.min()) == 0.0 and float(tensor.max()) == pytest.approx(levels[-1] / top)
    assert np.array_equal(tensor_to_frames(tensor, dtype), frames)


def test_float_to_uint8_rounds_not_truncates():
    values = torch.tensor([0.4, 0.6, 127.49, 127.51, 254.6, -3.0, 300.0]) / 255
    image = values.view(1, 1, -1).expand(3, 1, -1)
    expected = [0, 1, 127, 128, 255, 0, 255]
    assert tensor_to_frames(image)[0, :, 0].tolist() == expected
    assert to_uint8(image)[0, :, 0].tolist() == expected
    assert to_uint8(image.permute(1, 2, 0).numpy())[0, :, 0].tolist() == expected


def test_leading_dimensions_are_kept():
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 6, 3), dtype=np.uint8)
    tensor = frames_to_tensor(frames)
    assert tensor.shape == (2, 3, 3, 5, 6)
    assert np.array_equal(tensor_to_frames(tensor), frames)


def test_a_float_array_is_copied_not_shared():
    frame = np.full((2, 2, 3), 0.25, np.float32)
    tensor = frames_to_tensor(frame)
    tensor += 1
    assert frame.max() == 0.25
