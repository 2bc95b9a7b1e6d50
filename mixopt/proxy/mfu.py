"""Model FLOPs utilisation (MFU): achieved training FLOP/s over the GPU's dense bf16 peak.

Peaks are the vendors' dense (no sparsity) bf16 tensor-core figures, matched
by substring of ``torch.cuda.get_device_name()``; the longest matching key
wins, so "H100 PCIe" is told apart from "H100". CPUs and unknown GPUs have no
entry: ``peak_flops`` returns None and so does ``mfu``.
"""

from __future__ import annotations

import torch

# dense bf16 tensor-core peak, FLOP/s, by substring of the CUDA device name
GPU_BF16_PEAK_FLOPS: dict[str, float] = {
    "B200": 2250e12,
    "B100": 1750e12,
    "H200 NVL": 835e12,
    "H200": 989e12,  # SXM
    "GH200": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM ("NVIDIA H100 80GB HBM3")
    "H800 PCIe": 756e12,
    "H800": 989e12,
    "A100": 312e12,  # SXM and PCIe alike
    "A800": 312e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,  # with fp32 accumulation
    "RTX A6000": 155e12,
    "RTX 6000 Ada": 365e12,
}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device)


def peak_flops(device: torch.device | str) -> float | None:
    """Dense bf16 peak FLOP/s of ``device``; None on CPU or for a GPU not in ``GPU_BF16_PEAK_FLOPS``."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = _device_name(device)
    hits = [k for k in GPU_BF16_PEAK_FLOPS if k in name]
    return GPU_BF16_PEAK_FLOPS[max(hits, key=len)] if hits else None


def mfu(flops_per_token: float, tokens_per_second: float, device: torch.device | str) -> float | None:
    """``flops_per_token * tokens_per_second / peak_flops(device)``, a fraction in [0, 1]; None without a known peak.

    For M stacked proxies pass one model's ``flops_per_token`` and the stack's
    total tokens per second.
    """
    if flops_per_token < 0 or tokens_per_second < 0:
        raise ValueError(f"flops_per_token ({flops_per_token}) and tokens_per_second ({tokens_per_second}) "
                         "must be non-negative.")
    peak = peak_flops(device)
    return None if peak is None else flops_per_token * tokens_per_second / peak
