"""`reasonlab.heap.release_memory`: on glibc it returns the heap's free pages; elsewhere it does nothing."""

from __future__ import annotations

import sys

import pytest

from reasonlab import heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_memory_trims_the_heap_on_linux(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []

    class FakeLibc:
        def malloc_trim(self, pad: int) -> int:
            calls.append(pad)
            return 1

    assert heap.release_memory() is True  # the real glibc
    monkeypatch.setattr(heap, "_glibc", lambda: FakeLibc())
    assert heap.release_memory() is True and calls == [0]


def test_release_memory_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.release_memory() is False
