"""Split step: packs and manifest from the archive; re-split; every bad input named, nothing
left."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evalkit import as_json, tiny_config
from rocksr import ROCK_TYPES, SPLITS
from rocksr.data.archive import ArchiveError, hr_member, lr_member, open_archive, read_grey
from rocksr.data.packs import load_pack, read_index
from rocksr.data.split import MANIFEST_COLUMNS, split_archive
from rocksr.workflow import config as cfg

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "split.py"
RESPLIT = {"ratios": {"train": 0.5, "valid": 0.25, "test": 0.25}, "seed": 3}


def run(tmp_path, archive, rock_types=ROCK_TYPES, scale=4, degradation="unknown", resplit=None,
        name="out"):
    out = tmp_path / name
    split_archive(archive, out / "packs", out / "manifest.csv", list(rock_types), scale,
                  degradation, resplit=resplit, workers=2)
    with (out / "manifest.csv").open() as f:
        return out, list(csv.DictReader(f))


def assert_no_outputs(out: Path):
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


def test_dataset_splits_packs_and_manifest(tmp_path, synthetic_archive):
    out, rows = run(tmp_path, synthetic_archive)
    index = read_index(out / "packs")
    assert (index["scale"], index["degradation"]) == (4, "unknown")
    assert [(e["rock"], e["split"], e["n"]) for e in index["packs"]] == [
        (r, s, n) for r in ROCK_TYPES for s, n in zip(SPLITS, (4, 2, 2))]
    pack = load_pack(out / "packs", "coal", "test")
    assert pack.hr.shape == (2, 32, 32) and pack.lr.shape == (2, 8, 8) and pack.hr.dtype == np.uint8
    assert pack.ids.tolist() == [3601, 3602]
    with open_archive(synthetic_archive) as zf:
        assert np.array_equal(pack.hr[1], read_grey(zf, hr_member("coal", "test", 3602)))
        assert np.array_equal(pack.lr[1],
                              read_grey(zf, lr_member("coal", "test", 3602, 4, "unknown")))
    assert tuple(rows[0]) == MANIFEST_COLUMNS and len(rows) == 3 * 8
    assert rows[0] == {"rock_type": "carbonate", "split": "train", "id": "1",
                       "hr_member": hr_member("carbonate", "train", 1),
                       "lr_member": lr_member("carbonate", "train", 1, 4, "unknown"),
                       "hr_height": "32", "hr_width": "32", "lr_height": "8", "lr_width": "8"}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "packs"]  # no temp files


def test_scale_degradation_and_rock_type_selection(tmp_path, synthetic_archive):
    out, rows = run(tmp_path, synthetic_archive, rock_types=["sandstone"], scale=2,
                    degradation="default")
    assert {r["rock_type"] for r in rows} == {"sandstone"}
    assert all(r["lr_member"].endswith("x2.png") and "_LR_default_X2/" in r["lr_member"]
               for r in rows)
    assert load_pack(out / "packs", "sandstone", "train").lr.shape == (4, 16, 16)


def test_shuffled_folder_is_ignored(tmp_path, altered_archive):
    shuffled = {f"DeepRockSR-2D/shuffled2D/shuffled2D_train_HR/000{i}.png":
                np.zeros((32, 32), np.uint8) for i in (1, 2)}
    _, rows = run(tmp_path, altered_archive(put=shuffled))
    assert len(rows) == 24 and not any("shuffled" in r["hr_member"] for r in rows)


def test_resplit_is_deterministic_disjoint_and_by_ratio(tmp_path, synthetic_archive):
    _, rows = run(tmp_path, synthetic_archive, resplit=RESPLIT, name="a")
    _, again = run(tmp_path, synthetic_archive, resplit=RESPLIT, name="b")
    _, other = run(tmp_path, synthetic_archive, resplit={**RESPLIT, "seed": 4}, name="c")
    assert rows == again
    assert rows != other
    for rock in ROCK_TYPES:
        ids = {s: {int(r["id"]) for r in rows if r["rock_type"] == rock and r["split"] == s}
               for s in SPLITS}
        assert [len(ids[s]) for s in SPLITS] == [4, 2, 2]  # 8 images by 0.5 / 0.25 / 0.25
        assert not (ids["train"] & ids["valid"] or ids["train"] & ids["test"]
                    or ids["valid"] & ids["test"])
        assert set().union(*ids.values()) == {1, 2, 3, 4, 3201, 3202, 3601, 3602}
    assert any(r["split"] == "train" and int(r["id"]) > 3200 for r in rows)  # really re-dealt


@pytest.mark.parametrize("resplit, message", [
    ({"ratios": {"train": 0.9, "valid": 0.05, "test": 0.05}, "seed": 0},
     "no carbonate images in the (valid|test) split"),
    ({"ratios": {"train": 0.9, "valid": 0.9, "test": 0.1}, "seed": 0}, "sum to 1"),
    ({"ratios": {"train": 1.0}, "seed": 0}, "resplit must be null or"),
])
def test_bad_resplit(tmp_path, synthetic_archive, resplit, message):
    with pytest.raises(ArchiveError, match=message):
        run(tmp_path, synthetic_archive, resplit=resplit)
    assert_no_outputs(tmp_path / "out")


LR = lr_member("coal", "valid", 3202, 4, "unknown")
HR = hr_member("coal", "valid", 3202)


@pytest.mark.parametrize("change, message", [
    ({"put": {LR: b"\x89PNG\r\n\x1a\n broken"}}, f"{LR}: corrupt or unreadable PNG"),
    ({"put": {LR: np.dstack([np.zeros((8, 8)), np.ones((8, 8)), np.zeros((8, 8))])}},
     f"{LR}: colour image, its channels differ"),
    ({"drop": {LR}}, f"{HR}: missing partner"),
    ({"drop": {HR}}, f"{LR}: missing partner"),
    ({"put": {LR: np.zeros((9, 9), np.uint8)}},
     f"{LR}: wrong size, LR is 9x9 but its HR partner {HR} is 32x32"),
    ({"put": {LR: np.zeros((10, 10), np.uint8), HR: np.zeros((40, 40), np.uint8)}},
     f"{HR}: wrong size, 40x40 while the other coal valid HR images are 32x32"),
    ({"drop": {HR, LR, hr_member("coal", "valid", 3201),
               lr_member("coal", "valid", 3201, 4, "unknown")}},
     "empty selection: no coal images in the valid split"),
], ids=["corrupt", "colour", "no-lr", "no-hr", "lr-size", "hr-size", "empty-split"])
def test_bad_member_is_named_and_nothing_is_left(tmp_path, altered_archive, change, message):
    archive = altered_archive(**change)
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path, archive)
    assert_no_outputs(tmp_path / "out")


def test_wrong_size_names_the_odd_image_even_when_it_comes_first(tmp_path, altered_archive):
    first_hr = hr_member("coal", "train", 1)  # the pair that sizes the pack's arrays
    archive = altered_archive(put={first_hr: np.zeros((40, 40), np.uint8),
                                   lr_member("coal", "train", 1, 4, "unknown"):
                                   np.zeros((10, 10), np.uint8)})
    with pytest.raises(ArchiveError, match=f"^{first_hr}: wrong size, 40x40 while the other "
                                           "coal train HR images are 32x32$"):
        run(tmp_path, archive)
    assert_no_outputs(tmp_path / "out")


def test_empty_selection(tmp_path, synthetic_archive, altered_archive):
    with zipfile.ZipFile(synthetic_archive) as zf:
        archive = altered_archive(drop={n for n in zf.namelist() if "/sandstone2D/" in n})
    with pytest.raises(ArchiveError,
                       match="empty selection: no sandstone image pairs at x4 unknown"):
        run(tmp_path, archive)
    assert_no_outputs(tmp_path / "out")


def test_truncated_or_missing_archive_and_stale_outputs_removed(tmp_path, synthetic_archive):
    out, _ = run(tmp_path, synthetic_archive)  # a previous good run ...
    cut = tmp_path / "cut.zip"
    cut.write_bytes(synthetic_archive.read_bytes()[:-100])
    with pytest.raises(ArchiveError,
                       match="cut.zip: not a readable zip archive, truncated or corrupt"):
        run(tmp_path, cut)
    assert_no_outputs(out)  # ... must not pass for this one's output
    with pytest.raises(ArchiveError, match="missing.zip: archive not found"):
        run(tmp_path, tmp_path / "missing.zip")


def test_cli_success_and_one_line_error(tmp_path, synthetic_archive):
    out = tmp_path / "cli"
    config = tiny_config(dataset={"rock_types": ["coal"], "resplit": {
        "ratios": {"train": 0.5, "valid": 0.25, "test": 0.25}, "seed": 0}},
        runs={"tiny": {"degradation": "default"}})
    settings = cfg.data_products(config)["x4_default"]  # as the split rule passes them
    args = [sys.executable, str(SCRIPT), "--settings", as_json(settings),
            "--manifest", str(out / "manifest.csv"), "--packs", str(out / "packs")]
    ok = subprocess.run([*args, "--archive", str(synthetic_archive)], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert "coal train: 4 pairs, HR 32x32, LR 8x8" in ok.stderr
    bad = subprocess.run([*args, "--archive", str(tmp_path / "nope.zip")], capture_output=True,
                         text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].endswith(
        f"ERROR {tmp_path / 'nope.zip'}: archive not found")
    assert "Traceback" not in bad.stderr
    assert_no_outputs(out)
