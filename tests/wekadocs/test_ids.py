from __future__ import annotations

from wekadocs.ids import MAX_INDEXED_BYTES, bounded


def test_short_text_is_kept_as_it_is() -> None:
    assert bounded("create-a-snapshot") == "create-a-snapshot"
    assert bounded("é" * (MAX_INDEXED_BYTES // 2)) == "é" * (MAX_INDEXED_BYTES // 2)


def test_long_text_fits_and_long_twins_stay_apart() -> None:
    first, second = "a" * 9000 + "x", "a" * 9000 + "y"
    assert len(bounded(first).encode()) <= MAX_INDEXED_BYTES
    assert bounded(first) != bounded(second)
    assert bounded(first) == bounded(first)  # deterministic, so ids built on it are stable
    assert bounded(first).startswith("a" * 400)


def test_multibyte_text_is_not_cut_inside_a_character() -> None:
    cut = bounded("ü" * 1000)
    assert len(cut.encode()) <= MAX_INDEXED_BYTES
    cut.encode("utf-8").decode("utf-8")  # valid UTF-8
    assert cut.rstrip("-0123456789abcdef").strip("ü") == ""
