"""File helpers: atomic single-file writes, all-or-nothing directory writes, and modes that follow the umask."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from mixopt.errors import StoreError
from mixopt.io import atomic_write_bytes, atomic_write_files, atomic_write_json, atomic_write_text, current_umask


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def listing(root: Path) -> dict[str, bytes]:
    """Every entry under ``root`` (hidden ones too) with its bytes; directories map to None."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# ------------------------------------------------------------------ modes


def test_current_umask_reads_without_changing_it():
    with umask(0o027):
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    with umask(0o002):
        assert current_umask() == 0o002


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, mask):
    with umask(mask):
        a = atomic_write_text(tmp_path / "a.txt", "x")
        b = atomic_write_bytes(tmp_path / "b.bin", b"\x00")
        c = atomic_write_json(tmp_path / "c.json", {"k": 1})
        files = atomic_write_files(tmp_path / "d", {"one.yaml": "1", "two.bin": b"2"})
        plain = tmp_path / "plain.txt"
        plain.write_text("what open() gives")
    want = 0o666 & ~mask
    assert mode(plain) == want  # the reference: a file written the ordinary way
    assert {mode(p) for p in (a, b, c, *files)} == {want}
    assert mode(tmp_path / "d") == 0o777 & ~mask


def test_replacing_a_file_keeps_the_umask_mode_not_0600(tmp_path):
    with umask(0o022):
        path = atomic_write_text(tmp_path / "plan.yaml", "old")
        atomic_write_text(path, "new")
        atomic_write_files(tmp_path / "d", {"x": "1"})
        atomic_write_files(tmp_path / "d", {"x": "2", "y": "3"})
    assert mode(path) == 0o644 and path.read_text() == "new"
    assert mode(tmp_path / "d" / "x") == mode(tmp_path / "d" / "y") == 0o644


# ------------------------------------------------------------------ atomic_write_files


def test_write_files_into_a_new_directory(tmp_path):
    out = tmp_path / "a" / "b" / "export"
    got = atomic_write_files(out, {"phase_00.yaml": "zero\n", "blend.json": b"{}\n"})
    assert got == [out / "phase_00.yaml", out / "blend.json"]
    assert listing(tmp_path) == {"a": None, "a/b": None, "a/b/export": None,
                                 "a/b/export/blend.json": b"{}\n", "a/b/export/phase_00.yaml": b"zero\n"}


def test_write_files_into_an_existing_directory_keeps_other_files(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "phase_00.yaml").write_text("old 0")
    (out / "phase_05.yaml").write_text("stale")
    (out / "notes.txt").write_text("mine")
    atomic_write_files(out, {"phase_00.yaml": "new 0", "phase_01.yaml": "new 1"})
    assert listing(out) == {"notes.txt": b"mine", "phase_00.yaml": b"new 0", "phase_01.yaml": b"new 1", "phase_05.yaml": b"stale"}


def _previous(out: Path) -> dict[str, bytes]:
    out.mkdir()
    old = {"phase_00.yaml": b"old zero\n", "phase_01.yaml": b"old one\r\n\x00", "other.txt": b"keep"}
    for name, data in old.items():
        (out / name).write_bytes(data)
    os.symlink("phase_00.yaml", out / "latest.yaml")
    return listing(out)


NEW = {"phase_00.yaml": "new zero", "latest.yaml": "a file now", "phase_01.yaml": "new one", "phase_02.yaml": "new two"}


@pytest.mark.parametrize("fail_at", ["phase_00.yaml", "latest.yaml", "phase_01.yaml", "phase_02.yaml"])
def test_a_failed_rename_puts_every_old_file_back(tmp_path, monkeypatch, fail_at):
    out = tmp_path / "export"
    before = _previous(out)
    real = os.replace

    def replace(src, dst, **kw):
        if Path(dst) == out / fail_at:
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoreError, match="Nothing was changed") as info:
        atomic_write_files(out, NEW)
    assert "\n" not in str(info.value) and fail_at in str(info.value)
    assert listing(out) == before  # byte for byte, no staging directory left behind
    assert os.readlink(out / "latest.yaml") == "phase_00.yaml"


def test_a_failed_write_changes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "export"
    before = _previous(out)
    real = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError, match="No space left"):
        atomic_write_files(out, NEW)
    assert listing(out) == before


def test_an_interrupt_mid_swap_rolls_back_and_propagates(tmp_path, monkeypatch):
    out = tmp_path / "export"
    before = _previous(out)
    real = os.replace

    def replace(src, dst, **kw):
        if Path(dst).name == "phase_01.yaml":
            raise KeyboardInterrupt
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_files(out, NEW)
    assert listing(out) == before


def test_a_failed_rollback_says_where_the_old_files_are(tmp_path, monkeypatch):
    out = tmp_path / "export"
    _previous(out)
    real = os.replace

    def replace(src, dst, **kw):
        if Path(dst).name == "phase_01.yaml" or Path(src).parent.name == ".previous":
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoreError, match="previous versions are in") as info:
        atomic_write_files(out, NEW)
    kept = Path(str(info.value).split("previous versions are in ")[1].split(". Move")[0])
    assert (kept / "phase_00.yaml").read_bytes() == b"old zero\n" and "\n" not in str(info.value)


def test_a_failed_first_write_leaves_no_directories(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError):
        atomic_write_files(tmp_path / "new" / "deeper" / "export", {"a": "1"})
    assert list(tmp_path.iterdir()) == []


def test_read_only_directory_is_a_one_line_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    out = tmp_path / "export"
    out.mkdir()
    (out / "a").write_text("old")
    out.chmod(0o555)
    try:
        with pytest.raises(StoreError) as info:
            atomic_write_files(out, {"a": "new"})
    finally:
        out.chmod(0o755)
    assert "\n" not in str(info.value) and (out / "a").read_text() == "old"


def test_file_names_must_be_plain(tmp_path):
    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError):
            atomic_write_files(tmp_path / "d", {bad: "x"})
    assert not (tmp_path / "d").exists()
