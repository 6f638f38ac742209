"""What the page shows about a video and the frames it compares at a moment."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import av
import numpy as np
import pytest

from emavfi.cli.main import main
from emavfi.errors import EmavfiError
from emavfi.ui.media import describe_video, moment

SAMPLE = Path(str(resources.files("emavfi") / "assets" / "sample_clip.mp4"))


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_description_and_the_cli_error_for_a_bad_file(tmp_path: Path):
    assert describe_video(SAMPLE) == "320x180 · 25 fps · 1.00 s (25 frames) · no audio"
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(EmavfiError, match=r"^cannot read .*notes\.mp4: "):
        describe_video(bad)


@pytest.mark.parametrize(
    ("flags", "captions", "shown"),
    [
        (["--factor", "1"], ["input 0.480", "new 0.500", "input 0.520"], 25),
        (["--fps", "60"], ["new 0.483", "new 0.500", "new 0.517"], 30),
    ],
)
def test_moment_pairs_the_input_frame_with_the_output_and_the_frames_between(
    flags, captions, shown, tmp_path: Path
):
    output = tmp_path / "out.mp4"
    assert (
        main(["interpolate", str(SAMPLE), "-o", str(output), *flags, "--model", "blend", "-q"]) == 0
    )
    inputs, outputs = _decoded(SAMPLE), _decoded(output)
    seen = moment(SAMPLE, output, 0.5)
    assert np.array_equal(seen.input_frame, inputs[12])  # 0.48 s is on screen at 0.5 s
    assert np.array_equal(seen.output_frame, outputs[shown])
    labels = [caption.replace(" frame,", "").removesuffix(" s") for _, caption in seen.around]
    assert labels == captions
    assert all(image.shape == (180, 320, 3) for image, _ in seen.around)  # full size


def _marked_clip(path: Path, fmt: str | None) -> Path:
    """24 frames at 24 fps, libx264 with B-frames; frame i has brightness 8 * i."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"bframes": "2", "crf": "12"}
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(("name", "fmt"), [("raw.h264", "h264"), ("bframes.avi", None)])
def test_moment_of_inputs_without_usable_timestamps(name, fmt, tmp_path: Path):
    # a raw stream has no timestamps (and cannot seek); an AVI's are out of display order
    source = _marked_clip(tmp_path / name, fmt)
    output = tmp_path / "out.mp4"
    argv = ["interpolate", str(source), "-o", str(output), "--factor", "1", "--model", "blend"]
    assert main([*argv, "-q"]) == 0
    seen = moment(source, output, 0.5)
    assert round(float(seen.input_frame.mean()) / 8) == 12  # frame 12 is on screen at 0.5 s
    labels = [caption.replace(" frame,", "").removesuffix(" s") for _, caption in seen.around]
    assert labels == ["input 0.500", "new 0.521", "input 0.542"]
