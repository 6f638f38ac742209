"""Plant realistic bugs one at a time in a copy of the tree and check that the tests catch each.

    python scripts/planted_bugs.py          # every bug below; exits 1 if one passes the tests
    python scripts/planted_bugs.py video    # only the bugs in files whose path contains "video"

The complement of mutation testing (scripts/mutation_test.py) for code mutmut does not run:
the training losses, the augmentations, the distillation teacher, the video pipeline's
batching, scene cuts and duplicates, the writer's copied streams, trims and tags, and the
evaluation runner. Each bug is one substitution in one file, applied to a fresh copy of the
committed tree (``git archive HEAD``), whose tests then run against the copy's sources.
docs/testing.md lists what each bug is caught by.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOSSES, AUGMENT = "src/emavfi/losses.py", "src/emavfi/data/augment.py"
TEACHER = "src/emavfi/train/teacher.py"
PIPELINE, SCENES = "src/emavfi/video/pipeline.py", "src/emavfi/video/scenes.py"
WRITER = "src/emavfi/video/writer.py"
RUNNER = "src/emavfi/evaluate/runner.py"
WINDOWS, VIDEO_SOURCE = "src/emavfi/data/sources/base.py", "src/emavfi/data/sources/video.py"
# the tests run against a bug in each file
TESTS = {
    LOSSES: ["tests/train/test_losses.py"],
    AUGMENT: ["tests/data/test_augment.py"],
    TEACHER: ["tests/train/test_teacher.py"],
    PIPELINE: ["tests/video"],
    SCENES: ["tests/video"],
    WRITER: ["tests/video"],
    RUNNER: ["tests/evaluate"],
    WINDOWS: ["tests/data"],
    VIDEO_SOURCE: ["tests/data"],
}
# (what the bug is, file, the real line, the bug)
BUGS = [
    (
        "Charbonnier eps not squared",
        LOSSES,
        "(pred - target) ** 2 + eps * eps",
        "(pred - target) ** 2 + eps",
    ),
    ("Cr from blue", LOSSES, "cr = 0.5 + (r - y) * 0.713", "cr = 0.5 + (b - y) * 0.713"),
    (
        "gradient y differences along x",
        LOSSES,
        "dy = torch.diff(pred, n=order, dim=-2) - torch.diff(target, n=order, dim=-2)",
        "dy = torch.diff(pred, n=order, dim=-1) - torch.diff(target, n=order, dim=-1)",
    ),
    ("temporal weights favour far pairs", LOSSES, "gaps.pow(-alpha)", "gaps.pow(alpha)"),
    (
        "temporal targets not sorted by time",
        LOSSES,
        "    preds, targets = preds.gather(1, index), targets.gather(1, index)\n",
        "",
    ),
    ("Laplacian levels unweighted", LOSSES, "total + (2**level) * (", "total + ("),
    ("flow stages weighted coarse-heavy", LOSSES, "gamma ** (num_stages - 1 - s)", "gamma**s"),
    (
        "flow loss averaged over every pixel",
        LOSSES,
        "weight_s.sum().clamp_min(1.0)",
        "weight_s.numel()",
    ),
    ("Gaussian kernel not normalised", LOSSES, "kernel_2d = kernel_2d / kernel_2d.sum()", ""),
    (
        "merged stages left out",
        LOSSES,
        "lap = lap + 0.5 * laplacian_pyramid_loss(",
        "lap = lap + 0.0 * laplacian_pyramid_loss(",
    ),
    ("mask term not masked", LOSSES, ".abs() * valid\n", ".abs()\n"),
    (
        "horizontal flip keeps the flows' x",
        AUGMENT,
        '_signs(out["flow"], x=-1.0, y=1.0)',
        '_signs(out["flow"], x=1.0, y=1.0)',
    ),
    (
        "quarter turn rotates the vectors the wrong way",
        AUGMENT,
        "torch.stack([flow[:, 1], -flow[:, 0], flow[:, 3], -flow[:, 2]], dim=1)",
        "torch.stack([-flow[:, 1], flow[:, 0], -flow[:, 3], flow[:, 2]], dim=1)",
    ),
    (
        "temporal reversal keeps the flow halves",
        AUGMENT,
        '"flow": torch.cat([flow[:, 2:4], flow[:, 0:2]], dim=1),',
        '"flow": flow,',
    ),
    (
        "horizontal flip forgets flow_valid",
        AUGMENT,
        "sample[key].flip(-1) for key in",
        'sample[key].flip(-1) if key != "flow_valid" else sample[key] for key in',
    ),
    ("teacher weight without sigma squared", TEACHER, "(2 * self.sigma**2)", "(2 * self.sigma)"),
    (
        "teacher error not averaged over 5x5",
        TEACHER,
        "error, 5, stride=1, padding=2, count_include_pad=False",
        "error, 1, stride=1, padding=0, count_include_pad=False",
    ),
    (
        "teacher error on one channel",
        TEACHER,
        "error = (pred - targets[rows, cols]).abs().mean(1, keepdim=True)",
        "error = (pred - targets[rows, cols]).abs()[:, :1]",
    ),
    (
        "free timesteps keep the error weight",
        TEACHER,
        "torch.where(free_map, torch.full_like(weight, self.free_t_weight), weight)",
        "weight",
    ),
    ("free timesteps not written back", TEACHER, 'batch["timesteps"][rows, cols] = timesteps', ""),
    (
        "teacher frame left in BGR",
        TEACHER,
        "return to_channel_order(output.pred[crop], order),",
        "return output.pred[crop],",
    ),
    ("teacher pads with zeros", TEACHER, 'pad, mode="replicate")', 'pad, mode="constant")'),
    (
        "teacher replaces ground-truth flow",
        TEACHER,
        'needs = ~batch["flow_valid"].flatten(2).any(2)',
        'needs = batch["flow_valid"].flatten(2).any(2) | True',
    ),
    ("teacher mask never trusted", TEACHER, 'batch["mask_valid"][rows, cols] = weight.to(', "("),
    (
        "second frame of a pair taken from the first",
        PIPELINE,
        "np.stack([self.jobs[k][0][p[-1]] for k, p in enumerate(pairs)])",
        "np.stack([self.jobs[k][0][p[0]] for k, p in enumerate(pairs)])",
    ),
    (
        "pairs of other timesteps batched together",
        PIPELINE,
        "key != self.key or len(self.jobs) >= self.batch_size",
        "len(self.jobs) >= self.batch_size",
    ),
    (
        "frames interpolated across a cut",
        PIPELINE,
        "index, time, cut=cut)",
        "index, time, cut=False)",
    ),
    (
        "duplicates compared with themselves",
        PIPELINE,
        "is_duplicate(anchor[2], rgb)",
        "is_duplicate(rgb, rgb)",
    ),
    (
        "output times after the last input frame dropped",
        PIPELINE,
        "    intervals.append((previous_time, timeline.end))\n",
        "",
    ),
    (
        "16-bit frames written as 8-bit",
        PIPELINE,
        "depth = self.jobs[0][0][pairs[0][0]].dtype",
        "depth = np.dtype(np.uint8)",
    ),
    (
        "a chunk one timestep too large",
        PIPELINE,
        "len(timesteps) == max_timesteps:",
        "len(timesteps) == max_timesteps + 1:",
    ),
    (
        "a cut reported before the first frame",
        SCENES,
        "return self._count > 1 and bool(cuts)",
        "return bool(cuts) or self._count == 1",
    ),
    (
        "duplicates judged on the whole frame's mean",
        SCENES,
        "size = (max(1, width // 8), max(1, height // 8))",
        "size = (1, 1)",
    ),
    (
        "16-bit frames not shifted to 8 bits",
        SCENES,
        "rgb = (rgb >> 8).astype(np.uint8)",
        "rgb = rgb.astype(np.uint8)",
    ),
    (
        "audio before a trim's start kept",
        WRITER,
        "            if self.copy_from is not None and seconds < self.copy_from:\n                continue\n",
        "",
    ),
    (
        "copied packets shifted the wrong way",
        WRITER,
        "packet.pts = None if packet.pts is None else packet.pts - shift",
        "packet.pts = None if packet.pts is None else packet.pts + shift",
    ),
    (
        "subtitles not copied",
        WRITER,
        "list(self._source.streams.audio) + list(self._source.streams.subtitles)",
        "list(self._source.streams.audio)",
    ),
    ("audio after the last frame dropped", WRITER, "            self._copy_until(None)\n", ""),
    (
        "rotation not kept",
        WRITER,
        "            stream.set_display_rotation(self.info.rotation)",
        "            pass",
    ),
    (
        "sample aspect ratio not kept",
        WRITER,
        "            stream.codec_context.sample_aspect_ratio = self.info.sample_aspect_ratio",
        "            pass",
    ),
    (
        "a trimmed output's frames keep the input's times",
        WRITER,
        "frame.pts = round((time - self.offset) / self.time_base)",
        "frame.pts = round(time / self.time_base)",
    ),
    (
        "overall pools nothing",
        RUNNER,
        'group in ("overall", r.dataset)',
        "group == r.dataset",
    ),
    (
        "sharpness of the ground truth, not the output",
        RUNNER,
        "metrics.sharpness_ratio(pred, *inputs)",
        "metrics.sharpness_ratio(gt, *inputs)",
    ),
    (
        "time per call, not per frame",
        RUNNER,
        "(time.perf_counter() - start) / len(times)",
        "(time.perf_counter() - start)",
    ),
    (
        "predictions scored against other timesteps' truth",
        RUNNER,
        "enumerate(zip(targets, preds))",
        "enumerate(zip(targets, reversed(preds)))",
    ),
    (
        "samples of several targets share a name",
        RUNNER,
        "window.name if len(targets) == 1 else",
        "window.name if len(targets) >= 1 else",
    ),
    (
        "infinite PSNR not capped in the report's ranking",
        RUNNER,
        "min(r.psnr, 100.0)",
        "r.psnr",
    ),
    (
        "the last window of a sequence dropped",
        WINDOWS,
        "range(0, len(frames) - gap, stride)",
        "range(0, len(frames) - gap - 1, stride)",
    ),
    (
        "every target at the first step's t",
        WINDOWS,
        "targets = tuple((i / gap, frames[start + i])",
        "targets = tuple((1 / gap, frames[start + i])",
    ),
    (
        "windows across scene cuts",
        VIDEO_SOURCE,
        "bounds = [0, *info.cuts, info.frame_count]",
        "bounds = [0, info.frame_count]",
    ),
    (
        "a video frame one after the one asked for",
        VIDEO_SOURCE,
        "if self.next_index - 1 == index:",
        "if self.next_index - 2 == index:",
    ),
]


def caught(copy: Path, tests: list[str]) -> tuple[bool, str]:
    """Whether ``tests`` fail on the copy, and the first failing test."""
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-p", "no:randomly", "-p", "no:cacheprovider"]
        + [f"--basetemp={copy.parent / 'pytest'}", *tests],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    return done.returncode != 0, (failed[0].split(" - ")[0] if failed else "")


def main() -> int:
    bugs = [bug for bug in BUGS if not sys.argv[1:] or any(part in bug[1] for part in sys.argv[1:])]
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tree"
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(copy, filter="data")
        if caught(copy, sorted({t for files in TESTS.values() for t in files}))[0]:
            sys.exit("the tests fail on the unchanged tree: fix them first")
        for what, path, real, bug in bugs:
            source = copy / path
            text = source.read_text(encoding="utf-8")
            if text.count(real) != 1:
                sys.exit(f"{what}: {path} no longer has its line once; update this script")
            source.write_text(text.replace(real, bug), encoding="utf-8")
            try:
                found, test = caught(copy, TESTS[path])
            finally:
                source.write_text(text, encoding="utf-8")
            missed += not found
            print(f"{'caught' if found else 'MISSED'}: {what}  {test}", flush=True)
    print(f"{len(bugs) - missed} of {len(bugs)} planted bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
