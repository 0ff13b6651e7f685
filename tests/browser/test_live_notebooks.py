"""The live notebooks as a learner runs them: JupyterLab in a real (headless) browser, Run All, then the widgets.

Serves JupyterLab on 127.0.0.1 in the smoke profile, offline, on copies of the notebooks in build/browser/notebooks/
(autosave off: notebooks/ is never written), drives Debian's chromium with Playwright, and saves screenshots in
build/browser/. Run it with `make test-browser`; a warm cache (`make test` first) skips 05's training.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.paths import NOTEBOOKS_DIR, build_dir, project_root

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ROOT = project_root()  # the checkout: JupyterLab serves it
OUT = build_dir() / "browser"
RUN_ALL_TIMEOUT_S = 1200  # per notebook, as for the headless runs (helpers.notebooks.execute_notebook)
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
# JupyterLab user settings: no autosave (we only ever work on copies anyway), every cell in the DOM, no news, and
# the notebook's kernel starts without the "Select Kernel" dialog (which a learner answers with "Select").
SETTINGS = {
    "docmanager-extension/plugin": {"autosave": False},
    "notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_for_kernel(self, notebook: str, timeout_s: float = 180, settle_s: float = 3) -> None:
        """Wait until the notebook's kernel is idle and stays the same kernel for ``settle_s`` seconds.

        JupyterLab can start a kernel and replace it a second later; cells sent to the first one never run.
        """
        deadline, seen, since = time.monotonic() + timeout_s, None, time.monotonic()
        while time.monotonic() < deadline:
            kernels = [s["kernel"] for s in self.api("GET", "/api/sessions") if s["path"].endswith(notebook)]
            now = (kernels[0]["id"], kernels[0]["execution_state"]) if len(kernels) == 1 else None
            if now != seen:
                seen, since = now, time.monotonic()
            elif now and now[1] == "idle" and time.monotonic() - since >= settle_s:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the kernel of {notebook} did not start within {timeout_s:.0f} s; see {self.log}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server as `make lab` starts it, in the smoke profile; shut down (kernels too) afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium")
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "notebooks").mkdir(parents=True)
    home = tmp_path_factory.mktemp("jupyter")
    for name, values in SETTINGS.items():
        path = home / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k != "WORKBOOK_STATIC_WIDGETS"}
    env.update(
        OFFLINE,
        WORKBOOK_PROFILE="smoke",
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
    )
    port, token = free_port(), secrets.token_hex(16)
    log = OUT / "jupyterlab.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={ROOT}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],  # CI runs as root
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                running.api("GET", "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {log}:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield running
    finally:
        server.terminate()  # jupyter_server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (imported here: the unit stage never needs it)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-browser.txt")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def run_all(lab: Lab, browser, notebook: str):
    """Open a copy of ``notebook`` in JupyterLab, Run All from the menu, wait for the kernel; return (page, seconds)."""
    shutil.copy(NOTEBOOKS_DIR / notebook, OUT / "notebooks" / notebook)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # A workspace of its own: JupyterLab would otherwise reopen (and start a kernel for) the previous notebook.
    page.goto(
        f"{lab.url}/lab/workspaces/{Path(notebook).stem}/tree/build/browser/notebooks/{notebook}"
        f"?reset&token={lab.token}"
    )
    lab.wait_for_kernel(notebook)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    start = time.perf_counter()
    # Done when the kernel is idle, no cell waits ([*]) and every cell ran, or a cell failed (the rest never run).
    page.wait_for_function(
        """(stderr) => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
        const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
        const ran = prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
        const failed = document.querySelector(stderr) !== null;
        return status === 'dead' || (status === 'idle' && !prompts.some(p => p.includes('*')) && (ran || failed));
    }""",
        arg=STDERR,
        timeout=RUN_ALL_TIMEOUT_S * 1000,
        polling=1000,
    )
    seconds = time.perf_counter() - start
    page.screenshot(path=str(OUT / f"{Path(notebook).stem}_run_all.png"), full_page=False)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p.strip())]
    assert not unrun, f"{notebook}: code cells {unrun} did not run (a cell before them failed?): {errors(page)}"
    assert not errors(page), f"{notebook} shows an error after Run All: {errors(page)}"
    return page, seconds


def errors(page) -> list[str]:
    """Error outputs and tracebacks on the page (stderr renders carry both), and widgets that failed to render."""
    texts = (
        page.locator(STDERR).all_inner_texts()
        + page.locator(".jp-OutputArea-output").filter(has_text="Error displaying widget").all_inner_texts()
    )
    return [t[-1500:] for t in texts if re.search(r"Traceback|\w*Error\b", t)]


def server_tracebacks(lab: Lab, since: int) -> str:
    """Tracebacks the kernels logged after byte ``since`` of the server log (widget callbacks fail there)."""
    text = lab.log.read_text(errors="replace")[since:]
    return text if "Traceback" in text else ""


def finish(lab: Lab, page, notebook: str, seconds: float, since: int) -> None:
    """Check the log, record the time, shut the kernels down (frees memory for the next notebook)."""
    assert not errors(page), f"{notebook}: {errors(page)}"
    assert not server_tracebacks(lab, since), server_tracebacks(lab, since)[-3000:]
    times = OUT / "times.json"
    record = json.loads(times.read_text()) if times.exists() else {}
    record[notebook] = {"run_all_s": round(seconds, 1), "cache": os.environ.get("WORKBOOK_CACHE", "on")}
    times.write_text(json.dumps(record, indent=1))
    print(f"{notebook}: Run All took {seconds:.0f} s in the browser (cache {record[notebook]['cache']})")
    page.close()
    for kernel in lab.api("GET", "/api/kernels"):
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")


def test_overfitting_explorer_redraws_on_every_slider(lab, browser):
    # Playwright is optional (requirements-browser.txt): imported only where the browser runs.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: PLC0415

    since = lab.log.stat().st_size
    page, seconds = run_all(lab, browser, "05_overfitting_and_forgetting.ipynb")
    explorer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-hslider")).first
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(OUT / "05_explorer_start.png"))
    image = explorer.locator(".widget-output img")
    sliders = explorer.locator(".widget-hslider")
    assert sliders.count() >= 1 and image.count() == 1, "the explorer shows no slider or no plot"
    for s in range(sliders.count()):
        handle, readout = sliders.nth(s).locator(".noUi-handle"), sliders.nth(s).locator(".widget-readout")
        last = int(float(handle.get_attribute("aria-valuemax")))
        for key in ["ArrowRight"] * last + ["ArrowLeft"] * last:  # to every value, then back to the first
            src, label = image.get_attribute("src"), readout.inner_text()
            handle.press(key)
            try:
                page.wait_for_function(
                    """([box, s, src, label]) => {  // the redraw replaces the <img> element
                    const img = box.querySelector('.widget-output img');
                    const readout = box.querySelectorAll('.widget-hslider .widget-readout')[s];
                    return img !== null && img.src !== src && readout.textContent.trim() !== label;
                }""",
                    arg=[explorer.element_handle(), s, src, label.strip()],
                    timeout=30_000,
                )
            except PlaywrightTimeout:
                pytest.fail(
                    f"{key} on slider {s} ({label}): no new plot within 30 s. Kernel log: "
                    f"{server_tracebacks(lab, since)[-2000:] or 'no traceback'}; page: {errors(page)}"
                )
            explorer.screenshot(path=str(OUT / f"05_explorer_slider{s}_{readout.inner_text().strip()}.png"))
            assert not errors(page), errors(page)
    finish(lab, page, "05_overfitting_and_forgetting.ipynb", seconds, since)


def test_capstone_demo_box_answers_each_message(lab, browser):
    since = lab.log.stat().st_size
    page, seconds = run_all(lab, browser, "08_capstone_support_assistant.ipynb")
    box = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-text")).first
    box.scroll_into_view_if_needed()
    message, send, out = (
        box.locator(".widget-text input"),
        box.get_by_role("button", name="Send"),
        box.locator(".widget-output"),
    )
    shown = ""
    for i, text in enumerate(["My card was stolen, what does a replacement cost?", "What exchange rate do you use?"]):
        message.fill(text)
        send.click()
        page.wait_for_function(
            """([out, before, stderr]) => out.querySelector(stderr) !== null
                                   || (out.innerText.includes('5. voice writer') && out.innerText !== before)""",
            arg=[out.element_handle(), shown, STDERR],
            timeout=120_000,
        )
        assert not errors(page), f"Send with {text!r} raised: {errors(page)}"
        shown = out.inner_text()
        assert "1. classifier" in shown and "4. policy used" in shown, shown
        box.screenshot(path=str(OUT / f"08_demo_box_message{i + 1}.png"))
    message.fill("")
    send.click()
    page.wait_for_function(
        "out => out.innerText.includes('Type a message first.')", arg=out.element_handle(), timeout=30_000
    )
    finish(lab, page, "08_capstone_support_assistant.ipynb", seconds, since)
