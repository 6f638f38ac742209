"""`emavfi interpolate` end to end on tiny generated videos, checked with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from emavfi.cli.main import main

from .conftest import bar_frame, decode, make_video


def run_cli(*args: str) -> int:
    return main(["interpolate", *map(str, args), "--model", "blend", "--quiet"])


def test_fps_exact_count_timestamps_and_audio_copied(clip: Path, tmp_path: Path):
    out = tmp_path / "out.mp4"
    assert run_cli(clip, "-o", out, "--fps", "30") == 0
    times, images, facts = decode(out)
    _, _, in_facts = decode(clip)
    assert len(times) == 30  # 12 frames at 12 fps = 1 s -> 30 frames at 30 fps
    assert times == pytest.approx([k / 30 for k in range(30)], abs=1e-3)
    assert facts["streams"] == ["video", "audio"]
    # audio packets copied unchanged: same count, bytes and length
    assert facts["audio"] == in_facts["audio"]
    assert images[0].shape == (48, 64, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # no temp left


def test_factor_inserts_frames_and_fps_wins(clip: Path, tmp_path: Path):
    out = tmp_path / "x3.mkv"
    assert run_cli(clip, "-o", out, "--factor", "2") == 0
    times, images, _ = decode(out)
    assert len(times) == 36
    # Matroska shifts every stream by the AAC priming delay (no negative times): compare offsets
    assert [t - times[0] for t in times[:4]] == pytest.approx([0, 1 / 36, 2 / 36, 3 / 36], abs=1e-3)
    # frame 1 is 1/3 of the way from input 0 to input 1: a blend, not a copy
    src = [bar_frame(i, 64, 48) for i in range(2)]
    expected = (2 * src[0].astype(float) + src[1]) / 3
    assert np.abs(images[1].astype(float) - expected).mean() < 6
    both = tmp_path / "both.mp4"
    assert run_cli(clip, "-o", both, "--factor", "2", "--fps", "24") == 0
    assert len(decode(both)[0]) == 24


def test_variable_frame_rate_input(tmp_path: Path):
    pts = [0, 1, 3, 4, 7, 8, 9, 12, 13, 15]  # irregular gaps in 1/12 s
    src = make_video(tmp_path / "vfr.mp4", pts=pts, fps=12)
    out = tmp_path / "cfr.mp4"
    assert run_cli(src, "-o", out, "--fps", "24") == 0
    times, images, _ = decode(out)
    assert len(times) == 32  # span [0, 16/12) s at 24 fps
    assert times == pytest.approx([k / 24 for k in range(32)], abs=1e-3)
    # output 4 (t = 2/12 s) lies halfway between inputs at 1/12 and 3/12: a 50/50 blend
    expected = (bar_frame(1, 64, 48).astype(float) + bar_frame(2, 64, 48)) / 2
    assert np.abs(images[4].astype(float) - expected).mean() < 6


def test_rotation_colour_aspect_odd_size_and_frame_interval(tmp_path: Path):
    src = make_video(tmp_path / "odd.mp4", width=63, height=47, rotation=90, count=13, tags=True)
    out = tmp_path / "odd_out.mp4"
    assert run_cli(src, "-o", out, "--factor", "1", "--frame-interval", "2") == 0
    times, _, facts = decode(out)
    assert facts["size"] == (63, 47) and facts["rotation"] == 90
    assert facts["tags"] == (1, 1, 1, Fraction(4, 3)) == decode(src)[2]["tags"]
    assert len(times) == 14  # 7 kept frames x 2


def test_no_blending_across_a_cut(tmp_path: Path):
    src = make_video(tmp_path / "cut.mp4", count=8, cut_at=4)
    scenes = [bar_frame(3, 64, 48, 0), bar_frame(4, 64, 48, 1)]
    out = tmp_path / "cut_out.mp4"
    assert run_cli(src, "-o", out, "--factor", "3") == 0
    _, images, _ = decode(out)
    across = images[12:16]  # the outputs between input 3 and input 4

    def nearest(img):
        return min(np.abs(img.astype(float) - s).mean() for s in scenes)

    assert max(nearest(img) for img in across) < 10  # each is one of the two frames, not a mix
    blended = tmp_path / "blended.mp4"
    assert run_cli(src, "-o", blended, "--factor", "3", "--no-scene-detect") == 0
    assert nearest(decode(blended)[1][14]) > 20


def test_image_folders_in_and_out(tmp_path: Path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), bar_frame(i, 64, 48)[..., ::-1])
    out = tmp_path / "out_frames"
    assert run_cli(folder, "-o", out, "--factor", "1", "--input-fps", "10") == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(8)]
    middle = cv2.imread(str(out / names[1]))[..., ::-1].astype(float)
    assert (
        np.abs(middle - (bar_frame(0, 64, 48).astype(float) + bar_frame(1, 64, 48)) / 2).max() <= 1
    )
    video = tmp_path / "from_frames.mp4"
    assert run_cli(folder, "-o", video, "--fps", "20", "--input-fps", "10") == 0
    assert len(decode(video)[0]) == 8


def test_multi_n_is_factor_n_minus_1(clip: Path, tmp_path: Path):
    by_factor, by_multi, both = (tmp_path / f"{name}.mp4" for name in ("factor", "multi", "both"))
    assert run_cli(clip, "-o", by_factor, "--factor", "2") == 0
    assert run_cli(clip, "-o", by_multi, "--multi", "3") == 0
    times, images, _ = decode(by_multi)
    assert len(times) == 3 * 12  # the 12 input frames multiplied by 3
    factor_times, factor_images, _ = decode(by_factor)
    assert times == factor_times
    assert all(np.array_equal(a, b) for a, b in zip(images, factor_images, strict=True))
    assert run_cli(clip, "-o", both, "--multi", "2", "--factor", "1") == 0  # agreeing: accepted
    assert len(decode(both)[0]) == 2 * 12


@pytest.mark.parametrize(
    "flags, message",
    [(["--multi", "2", "--factor", "2"], "disagree"), (["--multi", "0"], "--multi must be")],
)
def test_bad_multi_is_one_line_exit_2(clip: Path, tmp_path: Path, capsys, flags, message):
    out = tmp_path / "out.mp4"
    assert run_cli(clip, "-o", out, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_variable_frame_rate_kept_with_factor(tmp_path: Path):
    pts = [0, 1, 3, 4, 7, 8, 9, 12, 13, 15]  # irregular gaps in 1/12 s
    src = make_video(tmp_path / "vfr.mp4", pts=pts, fps=12)
    out = tmp_path / "x2.mp4"
    assert run_cli(src, "-o", out, "--factor", "1") == 0
    times, images, _ = decode(out)
    # every input frame at its own time, one new frame halfway to the next (the last frame
    # lasts one nominal frame, 1/12 s): the irregular rhythm is kept, not made constant
    halfway = [(a + b) / 2 for a, b in zip(pts, pts[1:] + [pts[-1] + 1])]
    assert len(times) == 20
    assert [12 * t for t in times[::2]] == pytest.approx(pts, abs=0.01)
    assert [12 * t for t in times[1::2]] == pytest.approx(halfway, abs=0.01)
    # output 7 (5.5/12 s) lies halfway between input 3 (bar at step 3) and input 4 (step 4)
    expected = (bar_frame(3, 64, 48).astype(float) + bar_frame(4, 64, 48)) / 2
    assert np.abs(images[7].astype(float) - expected).mean() < 6


def _with_subtitles(video: Path, path: Path) -> Path:
    """``video`` plus a SubRip stream of two cues, remuxed into Matroska with PyAV."""
    import av

    srt = path.with_suffix(".srt")
    srt.write_text(
        "1\n00:00:00,100 --> 00:00:00,400\nHello\n\n2\n00:00:00,500 --> 00:00:00,900\nWorld\n"
    )
    with av.open(str(video)) as pictures, av.open(str(srt)) as text, av.open(str(path), "w") as out:
        streams = [pictures.streams.video[0], text.streams.subtitles[0]]
        copies = [out.add_stream_from_template(stream) for stream in streams]
        for source, stream, copy in zip((pictures, text), streams, copies):
            for packet in source.demux(stream):
                if packet.size:
                    packet.stream = copy
                    out.mux(packet)
    return path


def _cues(path: Path) -> list[tuple[float, float, bytes]]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        return [
            (float(p.pts * p.time_base), float(p.duration * p.time_base), bytes(p))
            for p in container.demux(stream)
            if p.size
        ]


def test_subtitles_are_copied_unchanged(tmp_path: Path):
    src = _with_subtitles(make_video(tmp_path / "plain.mp4"), tmp_path / "subtitled.mkv")
    assert _cues(src) == [(0.1, 0.3, b"Hello"), (0.5, 0.4, b"World")]
    out = tmp_path / "out.mkv"
    assert run_cli(src, "-o", out, "--factor", "1") == 0
    times, _, facts = decode(out)
    assert facts["streams"] == ["video", "subtitle"] and len(times) == 24
    assert _cues(out) == _cues(src)


@pytest.mark.parametrize("tta", [False, True])
def test_fast_and_tta_reach_the_network(tmp_path: Path, tta: bool, monkeypatch):
    """--fast: the whole network at half size; --tta: each pair encoded three times (flips)."""
    import torch

    from emavfi.models.checkpoints import save_checkpoint
    from emavfi.models.ema_vfi.net import EMAVFI
    from emavfi.models.registry import create_model

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_checkpoint(create_model("ema-tiny"), weights)
    calls = []
    encode = EMAVFI.encode

    def spy(self, img0, img1, flow_scale=1.0, refine_at_scale=False):
        calls.append((tuple(img0.shape), flow_scale, refine_at_scale))
        return encode(self, img0, img1, flow_scale, refine_at_scale)

    monkeypatch.setattr(EMAVFI, "encode", spy)
    src = make_video(tmp_path / "in.mp4", count=4)
    args = ["interpolate", src, "-o", tmp_path / "out.mp4", "--model", weights, "--fast"]
    assert main([*map(str, args), "--quiet", "--device", "cpu", *(["--tta"] if tta else [])]) == 0
    # three pairs in one batch; frames padded to 64x64 (the multiple 32 / 0.5), flow at half size
    assert calls == [((3, 3, 64, 64), 0.5, True)] * (3 if tta else 1)
    assert len(decode(tmp_path / "out.mp4")[0]) == 8
