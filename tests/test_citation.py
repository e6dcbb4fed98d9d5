"""CITATION.cff and LICENSE agree with pyproject.toml and with the data set's facts in the code
(cffconvert validated the file against the CFF 1.2.0 schema when it was written; it is not a
test dependency)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

import rocksr
from rocksr.data import download

ROOT = Path(__file__).resolve().parents[1]
PAPER_DOI = "10.1029/2019WR026052"


def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_names_this_version_and_licence():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = citation()
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == project["version"], "CITATION.cff version != pyproject.toml's"
    assert rocksr.__version__ == project["version"], "rocksr.__version__ != pyproject.toml's"
    assert cff["license"] == project["license"]["text"] == "MIT"
    assert cff["authors"] == [{"name": "rocksr authors"}]
    assert cff["title"].startswith("rocksr")
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the rocksr authors" in licence


def test_citation_references_the_paper_and_the_data_set():
    refs = {ref["type"]: ref for ref in citation()["references"]}
    paper, data = refs["article"], refs["data"]
    assert paper["doi"] == PAPER_DOI and paper["year"] == 2020 and paper["volume"] == 56
    assert paper["journal"] == "Water Resources Research"
    assert [a["family-names"] for a in paper["authors"]] == ["Wang", "Armstrong", "Mostaghimi"]
    assert data["doi"] == download.DOI and data["url"] == download.PROJECT_PAGE
    assert data["license"] == "ODC-By-1.0" and "215" in data["notes"]
    assert data["authors"] == paper["authors"]
