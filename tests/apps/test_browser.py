"""Both apps in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright: ``streamlit run`` on a
free port, real uploads (a microscopy PNG, a CT DICOM, a zipped MR study), assertions on what the page shows,
screenshots into the test's tmp dir."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.apps.conftest import app_environment, support
from toolkit.app_server import ROOT, serve
from toolkit.medical import sample_file

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 90_000  # ms
expect.set_options(timeout=TIMEOUT)  # every check waits for a page that reruns slowly on a busy machine


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`apt-get install chromium`; `make test` does "
                    "it when run as root)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def urls(app_root: Path, tmp_path_factory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("logs")
    env = app_environment(app_root)
    with serve("detection", env, logs / "detection.log") as det, serve("medical", env, logs / "medical.log") as med:
        yield {"detection": det, "medical": med, "medical.log": logs / "medical.log"}


def _open(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.locator('input[type="file"]').wait_for(state="attached")
    return page


def _image_pixels(page: Page, index: int = 0) -> np.ndarray:
    """The RGB pixels of the index-th st.image, fetched from the server like the browser does."""
    src = page.locator('[data-testid="stImage"] img').nth(index).get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def _coloured_share(rgb: np.ndarray) -> float:
    """Share of clearly coloured pixels: the jet colours of a heatmap, not a grey image."""
    return float((np.max(rgb, axis=2).astype(int) - np.min(rgb, axis=2) > 60).mean())


def _overlaid(rgb: np.ndarray) -> int:
    """Pixels tinted by the TC/WT/ET overlay: clearly coloured, and not the green crosshair."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    colour = np.max(rgb, axis=2).astype(int) - np.min(rgb, axis=2) > 40
    return int((colour & ~((g > r) & (g > b))).sum())


def test_detection_upload_table_counts_and_json_download(browser: Browser, urls: dict, tmp_path: Path) -> None:
    name, data = support.nuclei_sample()
    (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.txt").write_text("not an image")
    page = _open(browser, urls["detection"])
    page.locator('input[type="file"]').set_input_files([tmp_path / name, tmp_path / "notes.txt"])
    expect(page.get_by_text("notes.txt: not an image file (.txt)")).to_be_visible()
    expect(page.get_by_text("Counts per class")).to_be_visible()
    page.get_by_role("slider").first.focus()  # confidence threshold -> 0
    page.keyboard.press("Home")
    expect(page.locator('[data-testid="stSlider"]').first).to_contain_text("0.00")
    grid = page.locator('[data-testid="stDataFrame"] table[role="grid"]').first
    expect(grid).not_to_have_attribute("aria-rowcount", "1")
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=TIMEOUT)  # the page has finished
    rows = int(grid.get_attribute("aria-rowcount")) - 1  # minus the header row
    counts = page.locator('[data-testid="stTable"] td').all_inner_texts()
    assert rows > 0 and sum(int(c) for c in counts if c.isdigit()) == rows
    assert _image_pixels(page).shape == (512, 512, 3)  # the annotated image at the upload's size
    with page.expect_download() as download:
        page.get_by_role("button", name="Detections (JSON)").click()
    record = json.loads(Path(download.value.path()).read_text())
    assert record["source"] == name and record["count"] == rows and (record["width"], record["height"]) == (512, 512)
    page.screenshot(path=tmp_path / "detection.png", full_page=True)
    page.get_by_text("Explain a detection: what the model looked at").click()
    expect(page.get_by_text("hirescam @ stage").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=TIMEOUT)
    assert _coloured_share(_image_pixels(page, 1)) > 0.02  # the heatmap of the chosen detection
    page.locator('[data-testid="stImage"]').nth(1).screenshot(path=tmp_path / "detection_explain.png")


def test_effective_config_keeps_xsrf_on_and_limits_uploads() -> None:
    """What `streamlit run` from the repository root uses (`.streamlit/config.toml` over the defaults)."""
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    settings = dict(line.split(" = ", 1) for line in shown.splitlines() if " = " in line and line[0] != "#")
    assert settings["enableXsrfProtection"] == "true" and int(settings["maxUploadSize"]) == 500
    assert settings["showErrorDetails"] == '"none"' and settings["gatherUsageStats"] == "false"


def test_medical_ct_dicom_in_hu_and_a_zipped_study_segmented(browser: Browser, urls: dict, tmp_path: Path,
                                                             app_env) -> None:
    page = _open(browser, urls["medical"])
    page.locator('input[type="file"]').set_input_files(sample_file("CT_small.dcm"))
    expect(page.get_by_text("HU (Hounsfield units)")).to_be_visible()
    expect(page.locator('[data-testid="stMetricValue"]')).to_contain_text("HU")
    assert _image_pixels(page).shape[:2] == (512, 512)  # the 128 x 128 slice, square pixels, shown at 512
    page.get_by_role("button", name="Segment tumour").click()
    expect(page.get_by_text("CT_small.dcm is a 2D image (shape (128, 128, 1))")).to_be_visible()
    page.screenshot(path=tmp_path / "medical_ct.png", full_page=True)
    assert "CompressedSamples" not in urls["medical.log"].read_text()  # the patient name is never logged

    study = tmp_path / "study.zip"
    with zipfile.ZipFile(study, "w") as zf:
        for file_name, data in support.read_files(support.brain_dicom_study()):
            zf.writestr(file_name, data)
    page = _open(browser, urls["medical"])
    page.locator('input[type="file"]').set_input_files(study)
    expect(page.get_by_text("4 series found")).to_be_visible()
    before = _image_pixels(page)
    page.get_by_role("button", name="Segment tumour").click()
    expect(page.get_by_text("Segmented in")).to_be_visible()
    volumes = page.locator('[data-testid="stTable"]').nth(1)
    expect(volumes).to_contain_text("whole tumour")
    wt = float(volumes.locator("tr").nth(2).locator("td").last.inner_text().replace(",", ""))
    assert wt > 0
    expect(page.get_by_text("overlay: TC gold, WT blue, ET red")).to_be_visible()
    after = _image_pixels(page)
    coloured = [_overlaid(rgb) for rgb in (before, after)]
    assert coloured[0] == 0 and coloured[1] > 0.05 * after.shape[0] * after.shape[1]
    with page.expect_download() as download:
        page.get_by_role("button", name="Mask (DICOM SEG)").click()
    assert download.value.suggested_filename == "study_mask.seg.dcm"
    assert Path(download.value.path()).read_bytes()[128:132] == b"DICM"
    page.screenshot(path=tmp_path / "medical_study.png", full_page=True)
    page.locator('[data-testid="stImage"]').first.screenshot(path=tmp_path / "medical_study_slice.png")
    page.get_by_role("button", name="Explain region").click()
    expect(page.get_by_text("slices through the map's peak")).to_be_visible(timeout=TIMEOUT)
    assert _coloured_share(_image_pixels(page, page.locator('[data-testid="stImage"] img').count() - 1)) > 0.02
    page.locator('[data-testid="stImage"]').last.screenshot(path=tmp_path / "medical_explain.png")


@pytest.fixture(scope="module")
def classify_url(app_root: Path, tmp_path_factory) -> Iterator[str]:
    with serve("classify", app_environment(app_root), tmp_path_factory.mktemp("logs") / "classify.log") as url:
        yield url


def test_classify_sample_top_classes_and_a_heatmap(browser: Browser, classify_url: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(TIMEOUT)
    page.goto(classify_url)
    main = page.get_by_test_id("stMainBlockContainer")  # the sidebar's slider has the same label
    expect(main.get_by_text("Top classes", exact=True)).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("gradcam @ stage2: ").first).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("first-layer filters")).to_be_visible(timeout=TIMEOUT)
    assert _coloured_share(_image_pixels(page, 1)) > 0.02  # the input, then the heatmap of the top class
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=TIMEOUT)  # the page has finished
    page.screenshot(path=tmp_path / "classify.png", full_page=True)


@pytest.fixture(scope="module")
def instance_url(app_root: Path, instance_runs: Path, tmp_path_factory) -> Iterator[str]:
    env = {**app_environment(app_root), "TOOLKIT_RUNS": str(instance_runs)}
    with serve("detection", env, tmp_path_factory.mktemp("logs") / "instance.log") as url:
        yield url


def test_instance_masks_count_object_table_and_csv_download(browser: Browser, instance_url: str,
                                                             tmp_path: Path) -> None:
    name, data = support.nuclei_sample()
    (tmp_path / name).write_bytes(data)
    page = _open(browser, instance_url)
    page.locator('input[type="file"]').set_input_files(tmp_path / name)
    expect(page.get_by_text("Object areas")).to_be_visible()
    page.get_by_role("slider").first.focus()  # confidence threshold -> its floor, 0.05
    page.keyboard.press("Home")
    expect(page.locator('[data-testid="stSlider"]').first).to_contain_text("0.05")
    grid = page.locator('[data-testid="stDataFrame"] table[role="grid"]').first
    expect(grid).not_to_have_attribute("aria-rowcount", "1")
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=TIMEOUT)  # the page has finished
    count = int(page.locator('[data-testid="stMetricValue"]').first.inner_text())
    expect(grid).to_have_attribute("aria-rowcount", str(count + 1))  # one row per object, below the count
    rows = int(grid.get_attribute("aria-rowcount")) - 1  # minus the header row
    assert rows > 0
    overlay = _image_pixels(page)
    assert overlay.shape == (512, 512, 3)  # the masks over the upload, at its size
    colour = np.max(overlay, axis=2).astype(int) - np.min(overlay, axis=2)
    assert (colour > 40).mean() > 0.01  # objects painted in colour over the gray image
    with page.expect_download() as download:
        page.get_by_role("button", name="Objects (CSV)").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("id,class,score,area_px") and len(lines) == rows + 1
    page.screenshot(path=tmp_path / "instances.png", full_page=True)
