"""Check that `dvc plots show` renders every plot: run it, open the page in headless Chromium, screenshot.

Usage (from the project root, after `dvc repro`):

    .venv/bin/python benchmarks/plots_render.py [--project .] [--out .scratch/plots_render/plots.png]
                                                [--diff REV ...]   # `dvc plots diff REV...` instead

Steps:
  1. `dvc plots show -o <tmp>/dvc_plots` in the project (every plot dvc.yaml declares, no flags),
     or `dvc plots diff REV... -o <tmp>/dvc_plots` with --diff (workspace against REV...).
  2. DVC's page loads vega, vega-lite and vega-embed from a CDN. This machine may have no
     internet, so the same versions are installed once from the npm registry into
     .scratch/plots_render/ and a copy of the page points its <script> tags at them.
  3. Chromium (headless) loads the copy, lets the scripts run, and
     - dumps the DOM: every Vega plot must have become a <canvas> (vega-embed's renderer);
     - takes a screenshot, tall enough for all plots (blank bottom trimmed), for a person
       to look at.
Prints the plot counts, the ids of plots that have no data points (a plot over files that
do not exist, e.g. the group plot without groups) and
the PNG's path; exits 1 when a Vega plot did not render.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("GROCER_CHROMIUM", "/usr/bin/chromium")
SCRATCH = Path(".scratch/plots_render")
SPEC = re.compile(r'<div id = "(?P<id>[^"]+)">\s*<script[^>]*>\s*var spec = (?P<spec>\{.*?\});\s*vegaEmbed\(', re.DOTALL)
CDN_SCRIPT = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/(?P<package>[a-z-]+)@(?P<version>[0-9.]+)"></script>')
BUILD_FILE = {"vega": "vega.min.js", "vega-lite": "vega-lite.min.js", "vega-embed": "vega-embed.min.js"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--hide-scrollbars", "--allow-file-access-from-files"]
PLOT_HEIGHT = 520  # px of page per plot in the screenshot (DVC stacks plots vertically)


def run(command: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        sys.exit(f"plots_render: {' '.join(command[:3])} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def local_scripts(page: str, scratch: Path) -> dict[str, Path]:
    """package -> local build file, for every CDN script of the page (installed from npm once)."""
    wanted = {m["package"]: m["version"] for m in CDN_SCRIPT.finditer(page)}
    if set(wanted) != set(BUILD_FILE):
        sys.exit(f"plots_render: unexpected scripts in DVC's page: {wanted} (dvc_render changed its template?)")
    files = {package: scratch / "node_modules" / package / "build" / BUILD_FILE[package] for package in wanted}
    installed = all(
        path.is_file() and json.loads((path.parents[1] / "package.json").read_text())["version"] == wanted[package]
        for package, path in files.items()
    )
    if not installed:
        scratch.mkdir(parents=True, exist_ok=True)
        specs = [f"{package}@{version}" for package, version in wanted.items()]
        # the pinned trio does not satisfy vega-lite's declared peer range; the CDN serves it
        # as is and the browser builds are self-contained, so install exactly what DVC's page uses
        run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--legacy-peer-deps", "--prefix", str(scratch),
             *specs], timeout=600)
    return files


def offline_copy(page_path: Path, scratch: Path) -> Path:
    page = page_path.read_text()
    files = local_scripts(page, scratch)
    # charset: the CDN serves the scripts as UTF-8 by header; a file:// script has no header
    offline = CDN_SCRIPT.sub(
        lambda m: f'<script charset="utf-8" src="{files[m["package"]].resolve().as_uri()}"></script>', page
    )
    copy = page_path.with_name("index.offline.html")
    copy.write_text(offline)
    return copy


def empty_plots(page: str) -> list[str]:
    """Ids of the Vega plots whose data has no points (DVC writes `{}` when no file loaded)."""
    return [m["id"] for m in SPEC.finditer(page) if not json.loads(m["spec"]).get("data", {}).get("values")]


def trim_blank_bottom(png: Path) -> None:
    """Cut the white rows below the last plot (the window is sized for the worst case)."""
    from PIL import Image, ImageOps

    with Image.open(png) as image:
        box = ImageOps.invert(image.convert("RGB")).getbbox()
        if box:
            image.crop((0, 0, image.width, min(image.height, box[3] + 20))).save(png)


def chromium(page: Path, *args: str) -> str:
    command = [CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", *args, page.resolve().as_uri()]
    return run(command, timeout=180).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="DVC project root (default: .)")
    parser.add_argument("--diff", nargs="+", metavar="REV", help="render `dvc plots diff REV...` instead of show")
    parser.add_argument("--out", type=Path, default=None, help="screenshot PNG (default: <project>/" + str(SCRATCH / "plots.png") + ")")
    args = parser.parse_args()
    project = args.project.resolve()
    out = (args.out or project / SCRATCH / "plots.png").resolve()
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))

    with tempfile.TemporaryDirectory() as tmp:
        html_dir = Path(tmp) / "dvc_plots"
        command = ["diff", *args.diff] if args.diff else ["show"]
        shown = run([dvc, "plots", *command, "-o", str(html_dir)], cwd=project)
        if shown.stderr.strip():  # e.g. "DVC failed to load some plots ..."
            print(f"dvc plots show: {shown.stderr.strip()}", file=sys.stderr)
        page = html_dir / "index.html"
        n_vega = page.read_text().count("vegaEmbed(")
        n_images = page.read_text().count("<img")
        empty = empty_plots(page.read_text())
        offline = offline_copy(page, project / SCRATCH)

        dom = chromium(offline, "--dump-dom")
        n_canvas = dom.count("<canvas")
        height = min(PLOT_HEIGHT * (n_vega + n_images) + 300, 16000)
        out.parent.mkdir(parents=True, exist_ok=True)
        chromium(offline, f"--window-size=1400,{height}", f"--screenshot={out}")
        trim_blank_bottom(out)

    print(f"vega plots: {n_vega}, rendered as canvas: {n_canvas}, image plots: {n_images}")
    if empty:
        print(f"plots without data ({len(empty)}): " + "; ".join(empty))
    print(f"screenshot: {out}")
    if n_vega == 0 or n_canvas < n_vega or not out.is_file():
        print("plots_render: some plots did not render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
