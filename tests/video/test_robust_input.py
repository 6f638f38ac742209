"""Inputs that lose frames elsewhere: disordered, duplicated and missing timestamps (AVI with
B-frames, raw H.264 streams), truncated files, image folders with unpadded numbers."""

from __future__ import annotations

import hashlib
import logging
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emavfi.cli.main import main
from emavfi.video.reader import best_effort_times, decode_frames, probe
from tests.shared_paths import SHARED_DATA

from .conftest import bar_frame, decode

STREAMS = SHARED_DATA / "streams"
# frame counts of `ffprobe -count_frames` (streams/SOURCES.md)
STREAM_FRAMES = {
    "BA_MW_D.264": 100,
    "BA_MW_D_IDR_LOST.264": 70,
    "BA_MW_D_P_LOST.264": 99,
    "Error_I_P.264": 6,
    "MR1_BT_A.h264": 62,
    "CVFC1_Sony_C.jsv": 50,
    "Cisco_Men_whisper_640x320_CABAC_Bframe_9.264": 9,
    "SarVui.264": 17,
    "Static.264": 10,
    "test_scalinglist_jm.264": 5,
    "QCIF_2P_I_allIPCM.264": 2,
    "Zhling_1280x720.264": 19,
}


def marked_frame(i: int) -> np.ndarray:
    """The moving bar with a corner block of brightness 8 * i: which input frame this is."""
    image = bar_frame(i, 64, 48)
    image[:16, :16] = 8 * i
    return image


def marker(rgb: np.ndarray) -> int:
    return round(float(rgb[4:12, 4:12].mean()) / 8)


def encode(path: Path, count: int, *, fmt: str | None = None, bframes: int = 2, fps: int = 24):
    """libx264 with B-frames into ``path`` (AVI: timestamps in decoding order); marked frames."""
    import av

    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"bframes": str(bframes), "crf": "12"}
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(marked_frame(i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def warnings_about(caplog, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


def test_avi_with_b_frames_keeps_every_frame_in_display_order(tmp_path: Path, caplog):
    import av

    src = encode(tmp_path / "bframes.avi", 30)
    with av.open(str(src)) as container:  # the trouble: PyAV's frame pts are out of order
        pts = [frame.pts for frame in container.decode(video=0)]
    assert pts != sorted(pts)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        code = main(
            ["interpolate", str(src), "-o", str(out), "--model", "blend", "--factor", "1", "-q"]
        )
    assert code == 0
    assert len(warnings_about(caplog, "best-effort timestamps")) == 1
    times, images, _ = decode(out)
    assert len(times) == 60  # every one of the 30 input frames, and one new frame after each
    steps = np.diff(times)
    assert steps == pytest.approx([1 / 48] * 59, abs=1e-3)  # evenly spaced: 48 fps
    assert [marker(image) for image in images[::2]] == list(range(30))  # in display order


def test_duplicated_timestamps_keep_every_frame(tmp_path: Path, caplog):
    import av

    path = tmp_path / "dup.mkv"
    with av.open(str(path), "w") as container:  # pairs of packets share one timestamp
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"bframes": "0"}
        packets = []
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(marked_frame(i), format="rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode(None)
        for j, packet in enumerate(packets):
            packet.pts = packet.dts = (j // 2) * 2
            container.mux(packet)
    with caplog.at_level(logging.WARNING):
        info = probe(path)
        frames = list(decode_frames(info))
    assert len(warnings_about(caplog, "duplicated")) == 1
    assert [marker(rgb) for _, _, rgb in frames] == list(range(12))
    times = [time for _, time, _ in frames]
    assert all(b > a for a, b in pairwise(times))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.none() | st.integers(-5, 40), st.none() | st.integers(-5, 40)), max_size=30
    )
)
def test_best_effort_times_are_increasing_and_keep_sound_pts(stamps):
    times = best_effort_times(stamps, Fraction(1, 10), Fraction(10))
    assert len(times) == len(stamps)
    assert all(b > a for a, b in pairwise(times))
    pts = [p for p, _ in stamps]
    if None not in pts and all(b > a for a, b in pairwise(pts)):
        assert times == [Fraction(p, 10) for p in pts]


@pytest.mark.parametrize("name", sorted(STREAM_FRAMES))
def test_raw_h264_streams_give_every_frame(name, tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        info = probe(STREAMS / name)
        count = sum(1 for _ in decode_frames(info))
    assert info.frames == count == STREAM_FRAMES[name]
    assert info.rate == 25 and info.end - info.start == Fraction(count, 25)
    assert len(warnings_about(caplog, "no timestamps")) == 1
    # the only other warning: Error_I_P's change of size (CVFC1's crop is exact, not a resize)
    resized = warnings_about(caplog, "changes size")
    assert len(resized) == (name == "Error_I_P.264")
    out = tmp_path / "out.mp4"  # end to end (Error_I_P changes size mid-stream: scaled back)
    assert main(["interpolate", str(STREAMS / name), "-o", str(out), "--model", "blend", "-q"]) == 0
    times, images, _ = decode(out)
    assert len(times) == 2 * count and images[0].shape[:2] == (info.height, info.width)


def test_raw_stream_end_to_end_and_the_undecodable_one(tmp_path: Path, capsys):
    out = tmp_path / "cisco.mp4"
    src = STREAMS / "Cisco_Men_whisper_640x320_CABAC_Bframe_9.264"
    assert main(["interpolate", str(src), "-o", str(out), "--model", "blend", "-q"]) == 0
    times, images, _ = decode(out)
    assert len(times) == 18 and images[0].shape == (320, 640, 3)
    assert times == pytest.approx([k / 50 for k in range(18)], abs=1e-3)
    bad = STREAMS / "sps_subsetsps_bothVUI.264"
    code = main(
        ["interpolate", str(bad), "-o", str(tmp_path / "svc.mp4"), "--model", "blend", "-q"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no decodable video" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cisco.mp4"]


def test_raw_stream_with_vui_timing_uses_it(tmp_path: Path, caplog):
    src = encode(tmp_path / "thirty.h264", 9, fmt="h264", fps=30)
    with caplog.at_level(logging.WARNING):
        info = probe(src)
    assert info.rate == 30 and info.frames == 9
    assert warnings_about(caplog, "bitstream's timing")


def _truncated(tmp_path: Path, suffix: str) -> Path:
    """A 48-frame video cut at half its bytes (MP4 with its index at the front, or MKV)."""
    import av

    full = tmp_path / f"full{suffix}"
    options = {"movflags": "faststart"} if suffix == ".mp4" else {}
    with av.open(str(full), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(48):  # noise: every frame costs bytes, so half the file is half the frames
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    return cut


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_input_fails_unless_allowed(suffix, tmp_path: Path, capsys, caplog):
    src = _truncated(tmp_path, suffix)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out.mp4"
    args = ["interpolate", str(src), "-o", str(out), "--model", "blend", "--no-dedup", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated" in err[0] and "--allow-truncated" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--allow-truncated"]) == 0
    (warning,) = warnings_about(caplog, "truncated")
    read = int(warning.split("read ")[1].split(" frames")[0])
    assert 10 <= read < 48
    assert len(decode(out)[0]) == 2 * read  # every frame read, and one new after each
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_image_folder_in_natural_order(tmp_path: Path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):  # f0 ... f11, unpadded: as strings f10 and f11 sort before f2
        cv2.imwrite(str(folder / f"f{i}.png"), marked_frame(i)[..., ::-1])
    out = tmp_path / "out"
    assert (
        main(
            ["interpolate", str(folder), "-o", str(out), "--model", "blend", "--factor", "0", "-q"]
        )
        == 0
    )
    written = sorted(out.iterdir())
    assert [marker(cv2.imread(str(p))[..., ::-1]) for p in written] == list(range(12))


def test_ten_bit_input_stays_ten_bit_with_its_colour_tags(tmp_path: Path):
    import av

    src = tmp_path / "hdr.mkv"
    ramp = (np.arange(64, dtype=np.uint16)[None, :, None] * 4 + 400) * 64  # 10-bit steps of 4
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx265", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
        stream.options = {"x265-params": "log-level=error:lossless=1"}
        codec = stream.codec_context
        codec.color_primaries, codec.color_trc, codec.colorspace, codec.color_range = 9, 16, 9, 1
        for i in range(4):
            image = np.broadcast_to(ramp + i * 64, (48, 64, 3)).astype(np.uint16)
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le")
            frame = frame.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    for codec_args in ([], ["--codec", "libx265"]):
        out = tmp_path / f"out{len(codec_args)}.mkv"
        args = ["interpolate", str(src), "-o", str(out), "--model", "blend", "--crf", "0", "-q"]
        assert main([*args, *codec_args]) == 0
        with av.open(str(src)) as before, av.open(str(out)) as after:
            tags = [
                (c.pix_fmt, c.color_primaries, c.color_trc, c.colorspace, c.color_range)
                for c in (
                    before.streams.video[0].codec_context,
                    after.streams.video[0].codec_context,
                )
            ]
            assert tags[1] == tags[0] == ("yuv420p10le", 9, 16, 9, 1)
            luma = [
                next(f.decode(video=0)).to_ndarray(format="yuv420p10le") for f in (before, after)
            ]
        # 10-bit codes kept: 8 bits would round them to multiples of 4 (errors up to 2 codes)
        codes = luma[1][:48].astype(int)
        assert np.abs(codes - luma[0][:48]).max() <= 1
        assert np.count_nonzero(codes % 4) > codes.size // 4
