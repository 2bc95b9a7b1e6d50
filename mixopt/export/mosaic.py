"""MosaicML streaming: ``streams`` YAML for ``StreamingDataset``, one file per phase.

Each stream is ``{remote | local, proportion}`` as taken by
``streaming.Stream(remote=, local=, proportion=)`` (llm-foundry reads the same
mapping under ``train_loader.dataset.streams``). ``proportion`` is a share of
samples, i.e. of documents for MDS shards of one document per sample, so the
plan's token shares are converted with mean tokens per document. A path with a
URL scheme (``s3://``, ``gs://``, ``hf://`` ...) becomes ``remote``; anything
else is ``local``. Output is a directory of ``phase_NN.yaml`` files.

Phases do NOT continue each domain where the earlier ones stopped (a limitation of
MosaicML streaming: ``Stream`` takes ``proportion``/``repeat``/``choose``, which size a
stream per epoch, but no sample offset; its resume state, ``epoch`` and
``sample_in_epoch``, is for the same streams and proportions, not another phase's).
A StreamingDataset built for phase k starts at epoch 0, sample 0, and with the same
``shuffle_seed`` it walks each stream in the same order as phase k-1 did, so phase k
re-reads the samples phase k-1 read first and a domain planned at <= 1 epoch never
reaches its tail. Each phase file says so, with each domain's planned reading; to keep
phases disjoint, write such a domain's samples for each phase as its own MDS
directory (or ``split``) and point that phase's stream at it. mosaicml-streaming is
not installed here (it needs transformers<5), so this is read from its API, not run.
"""

from __future__ import annotations

import yaml

from .reading import reading_text
from .spec import ExportSpec

#: Keys ``streaming.Stream`` accepts (documented constructor arguments).
STREAM_KEYS = ("remote", "local", "split", "proportion", "repeat", "choose", "download_retry", "download_timeout", "validate_hash", "keep_zip")


def stream_entry(path: str, proportion: float) -> dict[str, object]:
    key = "remote" if "://" in path else "local"
    return {key: path, "proportion": proportion}


def export_mosaic(spec: ExportSpec) -> dict[str, str]:
    files: dict[str, str] = {}
    n = len(spec.phases)
    for phase, reading in zip(spec.phases, reading_text(spec)):
        streams = {d: stream_entry(spec.paths[d], w) for d, w in phase.weights.items()}
        head = [
            f"MosaicML streaming streams for {phase.name} ({phase.index + 1} of {n}), written by `mixopt export --format mosaic-streaming`.",
            f"proportion: {spec.note}.",
            "Planned token shares: " + ", ".join(f"{d}={w:g}" for d, w in phase.token_shares.items()) + ".",
            "Mean tokens per document used: " + ", ".join(f"{d}={spec.tokens_per_doc[d]:g}" for d in phase.weights) + ".",
            f"This phase covers budget fractions [{phase.start_fraction:g}, {phase.end_fraction:g}).",
            "Phases do NOT continue each domain where the earlier phases stopped: a StreamingDataset built for this phase "
            "starts every stream at epoch 0, sample 0 (Stream has no sample offset), and with the same shuffle_seed in the "
            "same order as the earlier phases, so it re-reads what they read first and a domain planned at <= 1 epoch "
            "never reaches its tail.",
            "To keep phases disjoint, write each such domain's samples for this phase as its own MDS directory (or split) "
            "and point this phase's stream at it; planned reading in this phase, in epochs of the domain's data "
            "(documents where the plan has no epochs), after the earlier phases': " + ", ".join(reading) + ".",
        ]
        body = yaml.safe_dump({"streams": streams}, sort_keys=False, default_flow_style=False)
        files[f"{phase.name}.yaml"] = "".join(f"# {line}\n" for line in head) + body
    return files
