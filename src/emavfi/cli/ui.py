"""``emavfi ui``: a local web page for interpolating a video or two images (needs ``emavfi[ui]``).

The page listens on 127.0.0.1 unless told otherwise and is never public without ``--share``.
Everything it writes (uploads, results) lives in one temporary folder removed when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from emavfi.errors import EmavfiError

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--share",
        action="store_true",
        help="also publish a public gradio.live link (off by default)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=2048,
        help="largest accepted upload in MB (default 2048)",
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="folder whose .safetensors/.pkl/.pth checkpoints are offered as models, repeatable "
        "(default: . and ./checkpoints)",
    )


def run(args: argparse.Namespace) -> int:
    if args.max_upload_mb <= 0:
        raise EmavfiError(f"--max-upload-mb must be positive, got {args.max_upload_mb:g}")
    workdir = Path(tempfile.mkdtemp(prefix="emavfi-ui-"))
    # Gradio keeps uploads and served files under GRADIO_TEMP_DIR: inside our folder, removed below.
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "files")
    runner = None
    try:
        try:
            from emavfi.ui.page import CSS, build_page, theme
        except ModuleNotFoundError as exc:
            if exc.name != "gradio":
                raise
            raise EmavfiError('the web UI needs Gradio: pip install "emavfi[ui]"') from exc
        from emavfi.ui.commands import model_choices
        from emavfi.ui.jobs import JobRunner

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
        runner = JobRunner(workdir / "files" / "jobs")
        checkpoint_dirs = args.checkpoints or [Path("."), Path("checkpoints")]
        page = build_page(runner, model_choices(checkpoint_dirs), args.max_upload_mb)
        if args.host not in LOOPBACK:
            log.warning(
                "listening on %s: other computers on the network can use the page", args.host
            )
        try:
            _, local_url, share_url = page.launch(
                server_name=args.host,
                server_port=args.port,
                share=args.share,
                max_file_size=int(args.max_upload_mb * 1024 * 1024),
                prevent_thread_lock=True,
                quiet=True,
                theme=theme(),
                css=CSS,
                footer_links=[],
            )
        except OSError as exc:
            raise EmavfiError(
                f"cannot listen on {args.host}:{args.port} (in use?); choose another --port"
            ) from exc
        print(f"emavfi ui: open {local_url}" + (f" (public: {share_url})" if share_url else ""))
        print("press Ctrl-C to stop", flush=True)
        try:
            with _stop_on_sigterm():
                threading.Event().wait()  # until Ctrl-C (or SIGTERM)
        except KeyboardInterrupt:
            print("emavfi ui: stopping")
        page.close(verbose=False)
    finally:
        if runner is not None:
            runner.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


@contextlib.contextmanager
def _stop_on_sigterm():
    """SIGTERM stops the page like Ctrl-C, so that the temporary folder is removed either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
