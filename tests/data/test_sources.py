from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from emavfi.data.sources import VideoFrameRef, load_frame, open_source
from emavfi.errors import EmavfiError
from tests.data.conftest import numbered_frame, write_rgb
from tests.shared_paths import SHARED_DATA as SHARED


def _value(ref) -> int:
    return int(load_frame(ref)[0, 0, 0])


def test_middlebury_real_data():
    windows = open_source("middlebury", SHARED / "middlebury")
    assert len(windows) == 12
    beanbags = windows[0]
    assert beanbags.name == "middlebury/Beanbags"
    assert [t for t, _ in beanbags.targets] == [0.5]
    frame = load_frame(beanbags.inputs[0])
    assert frame.dtype == np.uint8 and frame.shape == (480, 640, 3)
    assert load_frame(beanbags.targets[0][1]).shape == frame.shape


def test_triplet_real_ucf101():
    windows = open_source("triplet", SHARED / "ucf101")
    assert len(windows) == 379
    assert windows[0].targets[0][1].name == "frame_01_gt.png"
    assert windows[0].inputs[1].name == "frame_02.png"


def test_triplet_im_naming_and_order(tmp_path):
    for folder in ("10", "2"):
        for index in (1, 2, 3):
            write_rgb(tmp_path / "t" / folder / f"im{index}.png", numbered_frame(index * 50))
    windows = open_source("triplet", tmp_path / "t")
    assert [w.name for w in windows] == ["t/2", "t/10"]
    assert [_value(r) for r in windows[0].inputs] == [50, 150]
    assert _value(windows[0].targets[0][1]) == 100


def test_scenes_gap_windows_and_splits(scene_root):
    windows = open_source("scenes", scene_root / "train")
    # scene a: 5 frames -> 3 triplets, scene b: 3 frames -> 1
    assert [w.name for w in windows] == ["train/a/0", "train/a/1", "train/a/2", "train/b/0"]
    first = windows[0]
    assert [_value(r) for r in first.inputs] == [10, 30]
    assert [(t, _value(r)) for t, r in first.targets] == [(0.5, 20)]

    wide = open_source("scenes", scene_root, gap=4)  # only scene a (5 frames) is long enough
    assert [w.name for w in wide] == ["processed/train/a/0"]
    assert [(t, _value(r)) for t, r in wide[0].targets] == [(0.25, 20), (0.5, 30), (0.75, 40)]
    assert len(open_source("scenes", scene_root, stride=2)) == 2 + 1 + 1


def test_scenes_numeric_order_not_lexical(tmp_path):
    for index in (9, 10, 11):  # unpadded numbers sort wrongly as text
        write_rgb(tmp_path / "s" / "x" / f"{index}.jpg", numbered_frame(index * 10))
    (window,) = open_source("scenes", tmp_path / "s")
    assert [_value(r) for r in window.inputs] == pytest.approx([90, 110], abs=2)


def test_vimeo_triplets_and_septuplets(tmp_path):
    root = tmp_path / "vimeo"
    for seq, count in (("00001/0001", 7), ("00001/0002", 7)):
        for index in range(1, count + 1):
            write_rgb(root / "sequences" / seq / f"im{index}.png", numbered_frame(index * 30))
    (root / "sep_testlist.txt").write_text("00001/0001\n00001/0002\n\n")
    windows = open_source("vimeo", root)
    assert len(windows) == 2
    assert [_value(r) for r in windows[0].inputs] == [30, 210]
    assert [t for t, _ in windows[0].targets] == pytest.approx([i / 6 for i in range(1, 6)])
    assert [_value(r) for _, r in windows[0].targets] == [60, 90, 120, 150, 180]
    triplets = open_source("vimeo", root, gap=2)
    assert len(triplets) == 10 and [_value(r) for r in triplets[4].inputs] == [150, 210]
    (root / "tri_testlist.txt").write_text("00001/0009\n")
    with pytest.raises(EmavfiError, match="00001/0009"):
        open_source("vimeo", root, list_file="tri_testlist.txt")


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=fps)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    stream.options = {"qscale": "1"}
    for image in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def _closest(image: np.ndarray, frames: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(image.astype(int) - f).mean() for f in frames]))


def test_video_windows_split_at_scene_cut(tmp_path):
    ramp = np.linspace(0, 60, 64, dtype=np.float32)[None, :, None]
    level = [20 + 6 * i for i in range(8)] + [150 + 6 * i for i in range(8)]
    frames = [np.broadcast_to(ramp + v, (64, 64, 3)).astype(np.uint8) for v in level]
    for image in frames[8:]:
        image[..., 2] = 40  # a new scene: other colours too
    clip = tmp_path / "clip.avi"
    _write_video(clip, frames)
    windows = open_source("video", clip)
    assert len(windows) == 12  # 6 skip-one windows per 8-frame scene, none across the cut
    assert {w.name.split("/")[1] for w in windows} == {"scene000", "scene001"}
    assert all(isinstance(r, VideoFrameRef) for r in windows[0].inputs)
    assert windows[6].inputs[0].index == 8
    decoded = load_frame(windows[7].targets[0][1])  # frame 10
    assert decoded.shape == (64, 64, 3)
    assert _closest(decoded, frames) == 10
    earlier = load_frame(windows[0].inputs[0])  # backwards: reopens the file
    assert _closest(earlier, frames) == 0


def test_video_source_reads_through_the_video_reader(tmp_path):
    from emavfi.data.sources.video import probe_video

    raw = SHARED / "streams" / "BA_MW_D.264"  # no timestamps: read as ffmpeg does, 100 frames
    assert probe_video(raw).frame_count == 100
    assert load_frame(VideoFrameRef(raw, 99)).shape == (144, 176, 3)
    # an AVI with B-frames: PyAV's frame timestamps are out of order, frames are not
    clip = tmp_path / "bframes.avi"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"bframes": "2"}
        for index in range(12):
            frame = av.VideoFrame.from_ndarray(numbered_frame(20 * index, (48, 64)), "rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    windows = open_source("video", clip, threshold=255.0)
    assert probe_video(clip, threshold=255.0).frame_count == 12 and len(windows) == 10
    values = [_value(VideoFrameRef(clip, index)) for index in range(12)]
    assert values == pytest.approx([20 * index for index in range(12)], abs=3)


def test_bad_paths_and_options(tmp_path):
    with pytest.raises(EmavfiError, match="nowhere"):
        open_source("scenes", tmp_path / "nowhere")
    with pytest.raises(EmavfiError, match="unknown source kind"):
        open_source("flying", tmp_path)
    with pytest.raises(EmavfiError, match="gapp"):
        open_source("scenes", tmp_path, gapp=3)
    with pytest.raises(EmavfiError, match="no scene folder"):
        open_source("scenes", tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(EmavfiError, match="bad.png"):
        load_frame(bad)
    with pytest.raises(EmavfiError, match="clip.mp4"):
        open_source("video", tmp_path / "clip.mp4")
