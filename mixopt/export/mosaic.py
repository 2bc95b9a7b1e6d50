"""MosaicML streaming: ``streams`` YAML for ``StreamingDataset``, one file per phase.

Each stream is ``{[remote,] local, proportion}`` as taken by
``streaming.Stream(remote=, local=, proportion=)`` (llm-foundry reads the same
mapping under ``train_loader.dataset.streams``). ``proportion`` is a share of
samples, i.e. of documents for MDS shards of one document per sample, so the
plan's token shares are converted with mean tokens per document. A path with a
URL scheme (``s3://``, ``gs://``, ``hf://`` ...) becomes ``remote``; anything
else is ``local``. Output is a directory of ``phase_NN.yaml`` files.

A remote stream also gets a ``local`` folder, ``--local-cache`` (default
``/tmp/mixopt-streaming``) / ``<domain>-<hash of the remote>``, the same in every phase.
Without one, ``Stream`` derives ``<tempdir>/<hash of the remote>`` and refuses to reuse
it: the second phase's ``Stream`` (or a restarted job's) raised ``FileExistsError``
(mosaicml-streaming 0.13.0). With it, each phase reuses the shards the earlier ones
downloaded. A ``file://`` path is written as ``local`` (streaming has no ``file``
downloader). Two domains at one folder in a phase are refused, as StreamingDataset
refuses them ("Reused local directory").

Phases do NOT continue each domain where the earlier ones stopped (``Stream`` takes
``proportion``/``repeat``/``choose``, which size a stream per epoch, but no sample
offset). A StreamingDataset built for phase k draws its own random subset of each
stream and its own order (both seeded by ``shuffle_seed`` and the epoch, over phase k's
own sample counts), so it re-reads what the earlier phases read as often as an
independent draw would: a domain phase k-1 read a share a of and phase k reads a share
b of comes back in about a*b of its samples, not in 0 (continued) nor in all of
min(a, b) (restarted). Measured with mosaicml-streaming 0.13.0 in
``tests/test_export_libs.py``: see ``MOSAIC_REREAD``. Each phase file says so, with
each domain's planned reading; to keep phases disjoint, write such a domain's samples
for each phase as its own MDS directory (or ``split``) and point that phase's stream
at it.
"""

from __future__ import annotations

import hashlib

import yaml

from ..errors import ExportError
from .reading import pools_text, reading_text
from .spec import ExportSpec

#: Keys ``streaming.Stream`` accepts (documented constructor arguments).
STREAM_KEYS = ("remote", "local", "split", "proportion", "repeat", "choose", "download_retry", "download_timeout", "validate_hash", "keep_zip")


#: Folder remote streams cache their shards in when ``--local-cache`` is not given.
DEFAULT_LOCAL_CACHE = "/tmp/mixopt-streaming"
#: What phase 1 of ``tests/test_export_libs.py``'s plan re-read of phase 0's documents of its domain "mid", with
#: mosaicml-streaming 0.13.0 (an independent draw expects a*b*N; phases that continued would re-read 0); the test checks it.
MOSAIC_REREAD = ("a domain read at 1,454 and 640 of its 3,000 documents in two phases had 326 read in both, where an "
                 "independent draw expects 310")


def stream_entry(domain: str, path: str, proportion: float, cache: str = DEFAULT_LOCAL_CACHE) -> dict[str, object]:
    """``{local, proportion}`` for a path on disk; ``{remote, local, proportion}`` for a URL, its ``local`` a folder
    under ``cache`` named by the domain and a hash of the URL (the same in every phase)."""
    if path.startswith("file://"):
        return {"local": path[len("file://"):], "proportion": proportion}
    if "://" not in path:
        return {"local": path, "proportion": proportion}
    digest = hashlib.blake2s(path.encode(), digest_size=4).hexdigest()
    return {"remote": path, "local": f"{cache.rstrip('/')}/{domain}-{digest}", "proportion": proportion}


def _refuse_shared_folders(phase_name: str, streams: dict[str, dict[str, object]]) -> None:
    """StreamingDataset refuses two streams with one local folder ("Reused local directory"): refuse it here first."""
    by_folder: dict[str, list[str]] = {}
    for domain, entry in streams.items():
        by_folder.setdefault(str(entry["local"]).rstrip("/") or "/", []).append(domain)
    shared = [f"{' and '.join(ds)} ({folder})" for folder, ds in by_folder.items() if len(ds) > 1]
    if shared:
        raise ExportError(f"--paths gives {'; '.join(shared)} one folder in {phase_name}, and MosaicML streaming refuses one "
                          "local folder for two streams ('Reused local directory'). Give each domain its own MDS folder.")


def export_mosaic(spec: ExportSpec) -> dict[str, str]:
    files: dict[str, str] = {}
    n = len(spec.phases)
    cache = spec.options.local_cache or DEFAULT_LOCAL_CACHE
    for phase, reading in zip(spec.phases, reading_text(spec)):
        streams = {d: stream_entry(d, spec.paths[d], w, cache) for d, w in phase.weights.items()}
        _refuse_shared_folders(phase.name, streams)
        head = [
            f"MosaicML streaming streams for {phase.name} ({phase.index + 1} of {n}), written by `mixopt export --format mosaic-streaming`.",
            f"proportion: {spec.note}.",
            "Planned token shares: " + ", ".join(f"{d}={w:g}" for d, w in phase.token_shares.items()) + ".",
            "Mean tokens per document used: " + ", ".join(f"{d}={spec.tokens_per_doc[d]:g}" for d in phase.weights) + ".",
            f"This phase covers budget fractions [{phase.start_fraction:g}, {phase.end_fraction:g}).",
            "Phases do NOT continue each domain where the earlier phases stopped (Stream has no sample offset): a "
            "StreamingDataset built for this phase draws its own random subset of each stream and its own order, so it "
            "re-reads the earlier phases' samples as often as an independent draw would (a domain read at shares a and b "
            f"of its samples in two phases comes back in about a*b of them: in mixopt's check with mosaicml-streaming 0.13.0, "
            f"{MOSAIC_REREAD}).",
            *([f"Remote streams cache their shards in local folders under {cache} (--local-cache), the same in every phase."]
              if any("remote" in e for e in streams.values()) else []),
            "To keep phases disjoint, write each such domain's samples for this phase as its own MDS directory (or split) "
            "and point this phase's stream at it; planned reading in this phase, in epochs of the domain's data "
            "(documents where the plan has no epochs), after the earlier phases': " + ", ".join(reading) + ".",
            *([pools] if (pools := pools_text(spec, "mosaic-streaming")) else []),
        ]
        body = yaml.safe_dump({"streams": streams}, sort_keys=False, default_flow_style=False)
        files[f"{phase.name}.yaml"] = "".join(f"# {line}\n" for line in head) + body
    return files
