"""Scene cuts and duplicate frames on the frames the pipeline reads, 8 and 16 bits."""

from __future__ import annotations

import numpy as np

from emavfi.video.scenes import SceneCutDetector, is_duplicate


def _picture(seed: int, bits: int = 8) -> np.ndarray:
    """A smooth random picture, 96x128, at ``bits`` per channel."""
    import cv2

    small = np.random.default_rng(seed).random((6, 8, 3))
    image = cv2.resize(small, (128, 96), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return np.round(image * (2**bits - 1)).astype(np.uint8 if bits == 8 else np.uint16)


def test_a_cut_is_reported_on_the_first_frame_of_the_new_scene_never_before_the_first():
    detector = SceneCutDetector(fps=25)
    first, second = _picture(0), _picture(1)
    shifted = np.roll(first, 1, axis=1)  # the same scene, moved by a pixel
    assert [detector.is_cut(frame) for frame in (first, shifted, second, second)] == [
        False,
        False,
        True,
        False,
    ]


def test_sixteen_bit_frames_are_judged_on_their_top_eight_bits():
    picture = _picture(2, bits=16)
    noise = np.random.default_rng(3).integers(0, 64, picture.shape)
    grainy = np.minimum(picture + noise, 65535).astype(np.uint16)  # under an 8-bit level
    assert is_duplicate(picture, grainy)
    assert not is_duplicate(picture, _picture(4, bits=16))
    detector = SceneCutDetector(fps=25)
    assert [detector.is_cut(f) for f in (picture, grainy, _picture(4, bits=16))] == [
        False,
        False,
        True,
    ]


def test_a_small_moving_object_is_no_duplicate():
    """Duplicates compare 8x8-pixel block means: a 6x6 square moving 8 pixels changes two."""
    background = np.full((96, 128, 3), 90, np.uint8)
    before, after = background.copy(), background.copy()
    before[40:46, 40:46] = 250
    after[40:46, 48:54] = 250
    assert not is_duplicate(before, after)
    noisy = (before.astype(int) + np.random.default_rng(5).integers(-1, 2, before.shape)).astype(
        np.uint8
    )
    assert is_duplicate(before, noisy)  # codec noise of a level either way
