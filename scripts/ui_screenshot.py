"""Remake docs/ui.png, the README's picture of ``emavfi ui``: the sample at 2x, just finished.

    python scripts/ui_screenshot.py [--chromium /usr/bin/chromium]

Starts the page on a free port, drives headless Chromium with Playwright (as the browser test
does), and writes a 96-colour PNG 800 px wide.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from io import BytesIO
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "ui.png"
WIDTH = 800


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "emavfi.cli.main", "ui", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            sample = resources.files("emavfi") / "assets" / "sample_clip.mp4"
            page.locator("#input-video input[type=file]").set_input_files(str(sample))
            expect(page.locator("#input-info")).to_contain_text("25 fps", timeout=60_000)
            page.locator("#model input").click()
            page.get_by_role("option", name="classical", exact=True).click()
            page.locator("#run").click()
            expect(page.locator('#status [data-state="done"]')).to_be_visible(timeout=120_000)
            expect(page.locator("#around img").first).to_be_visible()
            png = page.screenshot(full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    image = Image.open(BytesIO(png)).convert("RGB")
    image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    image.quantize(96).save(OUTPUT, optimize=True)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
