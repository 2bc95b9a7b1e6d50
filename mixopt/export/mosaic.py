"""MosaicML streaming: ``streams`` YAML for ``StreamingDataset``, one file per phase.

Each stream is ``{remote | local, proportion}`` as taken by
``streaming.Stream(remote=, local=, proportion=)`` (llm-foundry reads the same
mapping under ``train_loader.dataset.streams``). ``proportion`` is a share of
samples, i.e. of documents for MDS shards of one document per sample, so the
plan's token shares are converted with mean tokens per document. A path with a
URL scheme (``s3://``, ``gs://``, ``hf://`` ...) becomes ``remote``; anything
else is ``local``. Output is a directory of ``phase_NN.yaml`` files.
"""

from __future__ import annotations

import yaml

from .spec import ExportSpec

#: Keys ``streaming.Stream`` accepts (documented constructor arguments).
STREAM_KEYS = ("remote", "local", "split", "proportion", "repeat", "choose", "download_retry", "download_timeout", "validate_hash", "keep_zip")


def stream_entry(path: str, proportion: float) -> dict[str, object]:
    key = "remote" if "://" in path else "local"
    return {key: path, "proportion": proportion}


def export_mosaic(spec: ExportSpec) -> dict[str, str]:
    files: dict[str, str] = {}
    n = len(spec.phases)
    for phase in spec.phases:
        streams = {d: stream_entry(spec.paths[d], w) for d, w in phase.weights.items()}
        head = [
            f"MosaicML streaming streams for {phase.name} ({phase.index + 1} of {n}), written by `mixopt export --format mosaic-streaming`.",
            f"proportion: {spec.note}.",
            "Planned token shares: " + ", ".join(f"{d}={w:g}" for d, w in phase.token_shares.items()) + ".",
            "Mean tokens per document used: " + ", ".join(f"{d}={spec.tokens_per_doc[d]:g}" for d in phase.weights) + ".",
            f"This phase covers budget fractions [{phase.start_fraction:g}, {phase.end_fraction:g}).",
        ]
        body = yaml.safe_dump({"streams": streams}, sort_keys=False, default_flow_style=False)
        files[f"{phase.name}.yaml"] = "".join(f"# {line}\n" for line in head) + body
    return files
