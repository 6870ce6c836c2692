"""The report in a real browser (headless Chromium): the leaderboard table is there, every gallery image loads, and
a class name holding <script> is shown as text, never run.

CI installs Debian's chromium and sets DD_BENCH_REQUIRE_BROWSER=1, so a missing browser fails there; elsewhere the
test is skipped without one.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import EVIL

# Runs after the load event: counts the images that did not decode, and the ones that did.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken", JSON.stringify(broken));
  document.body.setAttribute("data-checked", "yes");
});
</script>"""


def chromium() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                 None)
    if found is None:
        if os.environ.get("DD_BENCH_REQUIRE_BROWSER"):
            pytest.fail("DD_BENCH_REQUIRE_BROWSER is set and no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine")
    return found


def browse(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", *extra, page.as_uri()]
    result = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def with_probe(page: Path) -> Path:
    """A copy of the page beside it (same relative image paths) with the probe script before </body>."""
    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return probed


def test_report_renders_in_chromium(tiny_report, tmp_path):
    _, index = tiny_report
    gallery = next(index.parent.glob("gallery-*.html"))
    for page in (index, gallery):
        probed = with_probe(page)
        try:
            dom = browse(probed, tmp_path, "--dump-dom").stdout
        finally:
            probed.unlink()
        body = re.search(r"<body([^>]*)>", dom).group(1)
        assert 'data-checked="yes"' in body, "the page never finished loading"
        assert 'data-broken="[]"' in body, f"broken images on {page.name}: {body}"
        assert int(re.search(r'data-images="(\d+)"', body).group(1)) > 0
        if page == index:
            assert '<table class="leaderboard" id="leaderboard">' in dom
    # The class name is text in the rendered page: escaped in the DOM, and no script of ours ran from it.
    dom = browse(gallery, tmp_path, "--dump-dom").stdout
    assert f"<h2>{EVIL.replace('<', '&lt;').replace('>', '&gt;')}</h2>" in dom
    assert "<script>alert(1)</script>" not in dom
    shot = tmp_path / "gallery.png"
    browse(gallery, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.is_file() and shot.stat().st_size > 10_000
