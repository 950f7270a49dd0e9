"""Spec files uploaded to the dashboard: an oversized, binary or malformed file is refused
with the reason, and a good one checked (nothing is added until the user adds it)."""

from __future__ import annotations

import json

import pytest
from shipped import ROOT

from workbench.ui.live_strategies import MAX_SPEC_BYTES, UploadRejected, check_upload

GOOD = (ROOT / "data" / "strategies" / "sma_cross.json").read_bytes()


def test_a_good_spec_is_checked() -> None:
    assert check_upload("mine.json", GOOD).name == json.loads(GOOD)["name"]


def test_an_oversized_file_is_refused_unread() -> None:
    big = GOOD + b" " * MAX_SPEC_BYTES
    with pytest.raises(UploadRejected, match=r"big.json is [\d,]+ bytes; a spec file may have at"):
        check_upload("big.json", big)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", r"image.json is not UTF-8 text \(byte 0"),
        (b'{"name": "x", ', r"image.json is not a valid spec"),
        (b"[1, 2, 3]", r"image.json is not a valid spec"),
        (b"", r"image.json is empty"),
    ],
)
def test_a_malformed_file_is_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UploadRejected, match=reason):
        check_upload("image.json", data)
