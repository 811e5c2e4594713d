"""Build .dvc/plots/offline.html: DVC's plots page with vega, vega-lite and vega-embed inlined.

DVC's default page loads those three libraries from a CDN, so on a box without internet `dvc plots show`
writes a blank page. This template carries them inside (about 0.8 MB), at the versions DVC's renderer
is written for, so `dvc plots show` and `dvc plots diff` draw offline. `.dvc/config` points DVC at it
(`plots.html_template`). The libraries come from the npm registry (`npm pack`, which checks each
tarball against the registry's integrity hash); their licences go to .dvc/plots/LICENSES.txt.

    python scripts/build_plots_template.py          # needs npm; rewrites the two files

The page also fills a hidden `#cifarpipe-render-report` element once it has drawn (charts drawn, images
loaded, script errors), which tests/test_review.py reads through headless Chromium.
"""
from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".dvc" / "plots"
# name, version (those of dvc-render's VegaRenderer.SCRIPTS), file inside the package
LIBRARIES = [("vega", "5.20.2", "build/vega.min.js"), ("vega-lite", "5.2.0", "build/vega-lite.min.js"),
             ("vega-embed", "6.18.2", "build/vega-embed.min.js")]

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>cifarpipe plots</title>
    <script>
        window.cifarpipeErrors = [];
        window.addEventListener("error", (e) => window.cifarpipeErrors.push(String(e.message || e)));
        window.addEventListener("unhandledrejection", (e) => window.cifarpipeErrors.push(String(e.reason)));
    </script>
__LIBRARIES__
    <style>
        body { font-family: sans-serif; margin: 16px; }
        table { border-spacing: 15px; }
        img { max-width: 100%; }
    </style>
</head>
<body>
    {plot_divs}
    <pre id="cifarpipe-render-report" hidden></pre>
    <script>
        // What drew: the Vega plots vega-embed took on, the charts they drew, every picture loaded, no script
        // error. Read by the tests.
        function cifarpipeReport() {
            const embeds = document.querySelectorAll(".vega-embed").length;
            const charts = document.querySelectorAll(".vega-embed canvas, .vega-embed svg.marks").length;
            const images = [...document.images];
            const report = {vega_plots: embeds, charts_drawn: charts, images: images.length,
                            images_loaded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
                            errors: window.cifarpipeErrors};
            document.getElementById("cifarpipe-render-report").textContent = JSON.stringify(report);
        }
        window.addEventListener("load", () => setTimeout(cifarpipeReport, 1500));
    </script>
</body>
</html>
"""


def fetch(name: str, version: str, member: str, workdir: Path) -> tuple[str, str]:
    """(the library's JavaScript, its licence text) from the npm registry."""
    subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=workdir, check=True,
                   capture_output=True)
    with tarfile.open(workdir / f"{name}-{version}.tgz") as tar:
        js = tar.extractfile(f"package/{member}").read().decode()
        licence = tar.extractfile("package/LICENSE").read().decode()
    if "</script" in js:
        raise SystemExit(f"{name} contains '</script': it cannot be inlined as is")
    return js, licence


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python scripts/build_plots_template.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    scripts, licences = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, member in LIBRARIES:
            js, licence = fetch(name, version, member, Path(tmp))
            scripts.append(f"    <!-- {name}@{version} ({member}), BSD-3-Clause: see LICENSES.txt -->\n"
                           f"    <script>{js}</script>")
            licences.append(f"{name}@{version}\n{'=' * (len(name) + len(version) + 1)}\n{licence.strip()}\n")
    (OUT / "offline.html").write_text(PAGE.replace("__LIBRARIES__", "\n".join(scripts)))
    (OUT / "LICENSES.txt").write_text("Libraries inlined in offline.html\n\n" + "\n\n".join(licences))
    print(f"wrote {OUT / 'offline.html'} ({(OUT / 'offline.html').stat().st_size / 1e6:.2f} MB) and "
          "LICENSES.txt")


if __name__ == "__main__":
    main()
