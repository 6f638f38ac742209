"""The page of ``emavfi ui`` (Gradio): input, settings, progress, result, comparison.

The handlers are thin: they turn the page's choices into a subcommand's arguments
(``emavfi.ui.commands``), queue it on the process's one ``JobRunner`` and render its status.
Errors are the CLI's own one-line messages, shown in the page.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from emavfi.errors import EmavfiError
from emavfi.ui import commands, media
from emavfi.ui.commands import JobRequest
from emavfi.ui.jobs import CANCELLED, DONE, FAILED, QUEUED, JobRunner, JobStatus

POLL_S = 0.3
CSS = """
.emavfi-error { color: #b91c1c; font-weight: 600; margin: 0.4em 0; }
.emavfi-status progress { width: 100%; height: 1.2em; }
"""


def theme() -> gr.themes.Theme:
    """Gradio's default look with the system's fonts (nothing is fetched from other sites)."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def error_line(message: str) -> str:
    return f'<p class="emavfi-error">{html.escape(message)}</p>'


def status_html(status: JobStatus, command: str = "") -> str:
    """The job's state: its place in the queue, a progress bar with the time left, or the end."""
    if status.state == QUEUED:
        body = f"<p>Waiting: {status.ahead} job(s) ahead of yours.</p>"
    elif status.state == FAILED:
        body = error_line(status.error or "failed")
    elif status.state == CANCELLED:
        body = "<p>Cancelled: nothing was kept.</p>"
    elif status.state == DONE:
        body = f"<p>Done in {status.elapsed_s:.1f} s, the same as <code>{html.escape(command)}</code></p>"
    elif not status.total:
        body = f"<progress></progress><p>Starting: {status.elapsed_s:.0f} s</p>"
    else:
        left = f", about {status.eta_s:.0f} s left" if status.eta_s is not None else ""
        body = (
            f'<progress value="{status.done}" max="{status.total}"></progress>'
            f"<p>{status.done} / {status.total} frames, {status.elapsed_s:.0f} s{left}</p>"
        )
    return f'<div class="emavfi-status" data-state="{status.state}">{body}</div>'


def describe_video(video: str | None) -> str:
    if not video:
        return ""
    try:
        return f"<p>{html.escape(media.describe_video(Path(video)))}</p>"
    except EmavfiError as exc:
        return error_line(commands.user_message(str(exc), [video]))


def describe_pair(image0: str | None, image1: str | None) -> str:
    from emavfi.imageio import read_image

    sizes = []
    for image in (image0, image1):
        if image:
            try:
                frame = read_image(Path(image))
            except EmavfiError as exc:
                return error_line(commands.user_message(str(exc), [image]))
            sizes.append(f"{frame.shape[1]}x{frame.shape[0]}")
    return f"<p>{' and '.join(sizes)}</p>" if sizes else ""


def build_page(runner: JobRunner, models: list[tuple[str, str]], max_upload_mb: float) -> gr.Blocks:
    """The page; jobs go to ``runner``; ``models`` are ``(label, --model value)`` choices."""
    with gr.Blocks(title="emavfi", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(
            "# emavfi: smoother or slower video\n"
            "Drop a video (or two images), choose the frame rate, run. Everything stays on this "
            f"computer. Largest upload: {max_upload_mb:g} MB."
        )
        widgets = _layout(models)
        _wire(widgets, runner)
    return page


def _layout(models: list[tuple[str, str]]) -> SimpleNamespace:
    w = SimpleNamespace(kind=gr.State("video"), shown=gr.State(None))
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Tabs():
                with gr.Tab("Video") as w.video_tab:
                    w.video = gr.Video(
                        label="Input video", sources=["upload"], height=300, elem_id="input-video"
                    )
                    w.target = gr.Radio(
                        list(commands.VIDEO_TARGETS),
                        value="2x slow motion",
                        label="Target",
                        elem_id="target",
                    )
                    w.fps = gr.Number(value=48, label="Custom fps", visible=False)
                with gr.Tab("Two images") as w.pair_tab:
                    with gr.Row():
                        w.image0 = gr.Image(
                            label="First image", type="filepath", height=220, elem_id="image0"
                        )
                        w.image1 = gr.Image(
                            label="Second image", type="filepath", height=220, elem_id="image1"
                        )
                    w.pair_target = gr.Radio(
                        list(commands.PAIR_TARGETS), value="2x (1 new frame)", label="Target"
                    )
            w.info = gr.HTML(elem_id="input-info")
        with gr.Column(scale=2):
            w.model = gr.Dropdown(models, value=models[0][1], label="Model", elem_id="model")
            w.mode = gr.Radio(list(commands.MODES), value="quality", label="Speed or quality")
            w.device = gr.Dropdown(commands.device_choices(), value="auto", label="Device")
            with gr.Row():
                w.run = gr.Button("Interpolate", variant="primary", elem_id="run")
                w.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            w.status = gr.HTML(elem_id="status")
    with gr.Row():
        w.output = gr.Video(label="Result", interactive=False, visible=False, elem_id="result")
        w.download = gr.DownloadButton("Download", visible=False, elem_id="download")
    with gr.Column(visible=False) as w.compare:
        w.seconds = gr.Slider(0, 1, value=0, step=0.01, label="Moment to compare (s)")
        with gr.Row(equal_height=True):
            w.before_after = gr.ImageSlider(label="Input | result", format="png", scale=1)
            w.around = gr.Gallery(
                label="Frames around that moment (click one for full size)",
                format="png",
                columns=3,
                object_fit="contain",
                elem_id="around",
                scale=1,
            )
    return w


def _wire(w: SimpleNamespace, runner: JobRunner) -> None:
    w.video_tab.select(lambda: "video", None, w.kind)
    w.pair_tab.select(lambda: "pair", None, w.kind)
    w.target.change(lambda t: gr.update(visible=t == commands.CUSTOM_FPS), w.target, w.fps)
    w.video.change(describe_video, w.video, w.info)
    w.image0.change(describe_pair, [w.image0, w.image1], w.info)
    w.image1.change(describe_pair, [w.image0, w.image1], w.info)

    async def start(
        kind,
        video,
        image0,
        image1,
        target,
        fps,
        pair_target,
        model,
        mode,
        device,
        request: gr.Request,
    ):
        hide = {
            w.output: gr.update(visible=False),
            w.download: gr.update(visible=False),
            w.compare: gr.update(visible=False),
        }
        try:
            if kind == "video":
                wanted = JobRequest.video(video, target, fps, model, mode, device)
            else:
                wanted = JobRequest.pair(image0, image1, pair_target, model, mode, device)
            job = runner.submit(request.session_hash, wanted.run)
        except EmavfiError as exc:
            yield {w.status: error_line(str(exc)), **hide}
            return
        yield hide
        try:
            while not job.finished.is_set():
                yield {w.status: status_html(runner.status(job))}
                await asyncio.sleep(POLL_S)
        finally:
            if not job.finished.is_set():  # the page was closed or reloaded
                job.cancel()
        final = runner.status(job)
        if final.state == FAILED:
            message = commands.user_message(final.error, [*wanted.inputs, job.folder])
            final = JobStatus(FAILED, error=message)
        yield {w.status: status_html(final, wanted.shown(job.folder))}
        if final.state == DONE:
            yield await asyncio.to_thread(_result, w, wanted.inputs, final.result)

    def compare_at(shown, seconds: float):
        if not shown:
            return gr.update(), gr.update()
        frames = media.moment(Path(shown[0]), Path(shown[1]), seconds)
        return (frames.input_frame, frames.output_frame), frames.around

    def stop(request: gr.Request) -> None:
        runner.cancel(request.session_hash)

    inputs = [
        w.kind,
        w.video,
        w.image0,
        w.image1,
        w.target,
        w.fps,
        w.pair_target,
        w.model,
        w.mode,
        w.device,
    ]
    outputs = [
        w.status,
        w.output,
        w.download,
        w.compare,
        w.seconds,
        w.before_after,
        w.around,
        w.shown,
    ]
    w.run.click(start, inputs, outputs, show_progress="hidden", concurrency_limit=None)
    w.cancel.click(stop, None, None, show_progress="hidden", concurrency_limit=None)
    w.seconds.release(compare_at, [w.shown, w.seconds], [w.before_after, w.around])


def _result(w: SimpleNamespace, inputs: tuple[Path, ...], result) -> dict:
    """The finished job in the page: the video (or frames), the download, the comparison."""
    if len(inputs) == 1:
        length = media.duration(result.output)
        middle = round(length / 2, 2)
        frames = media.moment(inputs[0], result.output, middle)
        return {
            w.output: gr.update(value=str(result.output), visible=True),
            w.download: gr.update(value=str(result.output), visible=True),
            w.compare: gr.update(visible=True),
            w.seconds: gr.update(maximum=round(length, 2), value=middle, visible=True),
            w.before_after: (frames.input_frame, frames.output_frame),
            w.around: frames.around,
            w.shown: (str(inputs[0]), str(result.output)),
        }
    from emavfi.imageio import read_image

    frames, archive = result
    first, last = read_image(inputs[0]), read_image(inputs[1])
    new = [(read_image(p), p.stem) for p in frames]
    return {
        w.download: gr.update(value=str(archive), visible=True),
        w.compare: gr.update(visible=True),
        w.seconds: gr.update(visible=False),
        w.before_after: (first, new[len(new) // 2][0]),
        w.around: [(first, "first image"), *new, (last, "second image")],
        w.shown: None,
    }
