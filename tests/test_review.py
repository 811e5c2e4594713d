"""What a reviewer sees, on two real commits of a tiny run: `dvc plots show` / `dvc plots diff` pages that
draw with the network off (headless Chromium), and the pull-request report with both revisions overlaid."""
import html
import json
import re
import shutil
import subprocess
import sys

import matplotlib.image
import pytest
from dvc_render.html import PAGE_HTML

from conftest import copy_repo, dvc, run, set_params

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="no Chromium here (apt-get install chromium; .ci/run "
                                                             "installs it, so CI always runs this test)")
# the plots of dvc.yaml drawn by Vega: two bands over the seeds, loss, accuracy, LR schedule, ...
VEGA_PLOTS = 10
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_commits(baseline, tmp_path_factory):
    """A repo whose HEAD~1 is the baseline run (conftest's, built once per suite) and HEAD a change (another
    LRMAX), both reproduced."""
    repo = copy_repo(baseline[0], tmp_path_factory.mktemp("review") / "repo")
    set_params(repo, {"optim.lr": 0.005})
    dvc("repro", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "LRMAX 0.005"], repo)
    return repo


def render(page, screenshot=None) -> dict:
    """Open `page` in headless Chromium with every host name unresolvable; return the page's render report."""
    offline = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000"]
    dom = subprocess.run(offline + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=180).stdout
    if screenshot:
        subprocess.run(offline + ["--window-size=1300,2600", f"--screenshot={screenshot}", page.as_uri()],
                       capture_output=True, timeout=180)
    found = re.search(r'<pre id="cifarpipe-render-report"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)) or "{}")


@needs_chromium
@pytest.mark.parametrize("command", [["plots", "show"], ["plots", "diff", "HEAD~1"]])
def test_plots_pages_draw_every_plot_with_the_network_off(two_commits, tmp_path, command):
    dvc(*command, "-o", str(tmp_path / "page"), cwd=two_commits)
    page = tmp_path / "page" / "index.html"
    text = page.read_text()
    assert "<script src=" not in text  # nothing to load from anywhere: the libraries are inside
    report = render(page, screenshot=tmp_path / "page.png")
    assert report["errors"] == []
    assert report["vega_plots"] == report["charts_drawn"] == VEGA_PLOTS
    body = text[text.rindex("</head>"):]  # the inlined libraries mention <img> too
    assert report["images"] == body.count("<img ") and report["images_loaded"] == report["images"] >= 9
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"


@needs_chromium
def test_dvcs_default_page_draws_nothing_offline_which_is_why_the_template_exists(two_commits, tmp_path):
    """The control: DVC's own page loads vega from a CDN, so with the network off no chart draws."""
    template = tmp_path / "dvc_default.html"
    template.write_text(PAGE_HTML.replace("<body>", '<body><pre id="cifarpipe-render-report"></pre><script>'
                                          'window.onload = () => setTimeout(() => {document.getElementById('
                                          '"cifarpipe-render-report").textContent = '
                                          'JSON.stringify({charts_drawn: '
                                          'document.querySelectorAll(".vega-embed canvas").length})}, '
                                          '1500)</script>'))
    dvc("plots", "show", "--html-template", str(template), "-o", str(tmp_path / "page"), cwd=two_commits)
    assert "cdn.jsdelivr.net" in (tmp_path / "page" / "index.html").read_text()
    assert render(tmp_path / "page" / "index.html")["charts_drawn"] == 0


def test_the_report_leads_with_the_verdicts_and_overlays_both_revisions(two_commits):
    proc = run([sys.executable, "-m", "cifarpipe.tools.cli", "report", "--base", "HEAD~1", "--out",
                "report.md"], two_commits)
    report = proc.stdout
    assert report.strip() == (two_commits / "report.md").read_text().strip()
    head = report.split("## Base and change overlaid")[0]
    for side in ("base (`HEAD~1`)", "change"):
        assert re.search(rf"- \*\*{re.escape(side)}\*\*: test accuracy \d+\.\d\d% over 1 seed\(s\), [01] of "
                         r"1 at the target: target 90% \*\*(not )?met \(1 seed\)\*\* \(one run: seed noise "
                         r"not measured; run more seeds", head), head
    assert "One run on a side (1 base, 1 change)" in head and "train.seeds=[0,1,2,3,4]" in head
    rows = {line.split(" | ")[0].lstrip("| "): line for line in head.splitlines() if line.startswith("| ")}
    assert {"test accuracy", "test loss", "training seconds", "cat accuracy"} <= set(rows)
    assert "**undecided (one run on a side" in rows["test accuracy"]
    images = two_commits / "report_images"
    for name in ["test_accuracy_over_the_seeds", "test_loss_over_the_seeds", "lr_schedule_per_step",
                 "lr_range_test", "per_class_accuracy_mean_over_the_seeds"]:
        assert "![" in report and f"report_images/{name}.png" in report
        picture = matplotlib.image.imread(images / f"{name}.png")  # decodes as a PNG
        assert picture.shape[0] > 100 and picture.shape[1] > 100
        spec = json.loads((images / f"{name}.vl.json").read_text())
        # the change fixed optim.lr:
        drawn = {"HEAD~1"} if name == "lr_range_test" else {"HEAD~1", "workspace"}
        assert {row["rev"] for row in spec["data"]["values"]} == drawn, name          # it ran no range test
    schedule = json.loads((images / "lr_schedule_per_step.vl.json").read_text())["data"]["values"]
    peaks = {rev: max(float(r["lr"]) for r in schedule if r["rev"] == rev) for rev in ("HEAD~1", "workspace")}
    assert peaks["workspace"] == pytest.approx(0.005) and peaks["HEAD~1"] != pytest.approx(0.005)
    for picture in ["confusion.png", "misclassified.png", "curves.png", "lr_pick.png"]:
        assert (images / picture).read_bytes()[:4] == b"\x89PNG"
