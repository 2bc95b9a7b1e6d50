"""One training step of M proxies of one shape, and their evaluation.

``ModelStack`` holds one ``GPT`` (M = 1) or a ``StackedGPT`` (M > 1) with its
AdamW: ``step`` is forward, backward, gradient clipping (per model for a
stack) and the optimizer update; ``loss_sums`` and ``evaluate`` measure every
model on the same windows at once; ``branch`` copies weights and optimizer
state for a WSD decay branch. The loop (``loop.py``) and the stack-size probe
(``stack_size.py``) both train through ``ModelStack.step``.

With ``proxy.cuda_graphs`` on a CUDA device a step of the default proxy is a
few hundred tiny kernels whose launches cost ~100x their work, so the whole
step is captured once into a CUDA graph and replayed (PyTorch's "whole-network
capture"): the first ``GRAPH_EAGER_STEPS`` steps train eagerly on a side stream
(real steps; they also warm up the kernels and create AdamW's state), the next
one is captured on static copies of its inputs and replayed, and every later
step copies its batch into those inputs, writes its learning rate into a device
tensor AdamW reads (fused, ``capturable=True``) and replays. If the capture
fails the stack warns once and goes on eagerly. On CPU nothing changes.
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch.nn import functional as F

from .device import autocast
from .model import GPT, GPTConfig
from .stacked import StackedGPT, clip_grad_norm_per_model_

log = logging.getLogger("mixopt.proxy")

EVAL_BATCH = 64  # evaluation windows per forward pass (per model)
GRAPH_EAGER_STEPS = 3  # training steps run eagerly (on a side stream) before the step is captured, as in torch's docs
GRAPHS_WITH_COMPILE = False  # capture a torch.compile'd step too (read at call time; unmeasured, so off: the
# benchmark's ``compgraph`` arm turns it on to time the pairing, benchmarks/gpu_step_variants.py)


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device, *, matrix_dim: int = 2,
                   capturable: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (matmuls and embeddings), none on norms/biases.

    ``matrix_dim`` is 2 for one model and 3 for a stack of models (a leading model dim).
    ``capturable`` (CUDA) lets a CUDA graph capture its step.
    """
    decay = [p for p in model.parameters() if p.dim() >= matrix_dim]
    no_decay = [p for p in model.parameters() if p.dim() < matrix_dim]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if device.type == "cuda":
        kind = {"fused": True, "capturable": True} if capturable else {"fused": True}
    else:
        kind = {"foreach": True}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, **kind)


def uses_graphs(cfg, device) -> bool:
    """Whether steps replay a captured CUDA graph: ``cfg.cuda_graphs`` on a CUDA device, unless ``cfg.compile``.

    A compiled step is not captured by hand: that pairing was never measured, and torch.compile's kernels alone gave
    1.40x the graphed step on the wide shape (H200; benchmarks/gpu_step_variants.py). ``GRAPHS_WITH_COMPILE``
    captures the compiled step as well (the pairing's benchmark arm).
    """
    compiled = bool(getattr(cfg, "compile", False)) and not GRAPHS_WITH_COMPILE
    return bool(getattr(cfg, "cuda_graphs", False)) and not compiled and torch.device(device).type == "cuda"


class ModelStack:
    """M models of one shape with their AdamW: one ``GPT`` when M = 1, a ``StackedGPT`` otherwise.

    ``graphs`` (default: ``cfg.cuda_graphs``) replays each training step from a
    captured CUDA graph; it only applies on a CUDA device.
    """

    def __init__(self, model: GPT | StackedGPT, cfg, device: torch.device, dtype: torch.dtype, *, compile: bool = False,
                 graphs: bool | None = None):
        self.model, self.cfg, self.device, self.dtype = model, cfg, device, dtype
        self.single = isinstance(model, GPT)
        self.n_models = 1 if self.single else model.n_models
        want = (uses_graphs(cfg, device) if graphs is None else graphs) and (not compile or GRAPHS_WITH_COMPILE)
        self.graphs = want and device.type == "cuda"  # replay steps from a CUDA graph (until a capture fails)
        matrix_dim = 2 if self.single else 3
        if self.graphs:
            self.optimizer = make_optimizer(model, cfg, device, matrix_dim=matrix_dim, capturable=True)
        else:  # the call the eager path has always made
            self.optimizer = make_optimizer(model, cfg, device, matrix_dim=matrix_dim)
        self.fwd = torch.compile(model) if compile else model
        self.params = list(model.parameters())
        self._graph = None  # the captured step, once there is one
        self._static: tuple[torch.Tensor, ...] = ()  # the graph's inputs x, y, alive and its output losses
        if self.graphs:
            self._lr = torch.tensor(float(cfg.lr), dtype=torch.float32, device=device)  # () fp32, read by fused AdamW
            self._stream = torch.cuda.Stream(device)  # eager warm-up steps and the capture run here
            self._eager_left = GRAPH_EAGER_STEPS
            self._graph_groups()

    @classmethod
    def from_seeds(cls, shape: GPTConfig, seeds, cfg, device, dtype) -> "ModelStack":
        """Model i initialised under ``torch.manual_seed(seeds[i])``; the caller's RNG state is left alone."""
        if len(seeds) == 1:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seeds[0])
                model = GPT(shape)
        else:
            model = StackedGPT.from_seeds(shape, seeds)
        return cls(model.to(device), cfg, device, dtype, compile=cfg.compile)

    @property
    def graphed(self) -> bool:
        """Whether steps now replay a captured CUDA graph."""
        return self._graph is not None

    def step(self, x: torch.Tensor, y: torch.Tensor, lr: float, alive: torch.Tensor) -> torch.Tensor:
        """One AdamW step of every model on its batch x, y (M, B, T); returns the training losses (M,)."""
        if not self.graphs:
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            return self._train_step(x, y, alive)
        self._lr.fill_(lr)  # on the current stream, before the work that reads it
        if self._graph is None:
            if self._eager_left > 0:
                self._eager_left -= 1
                return self._side_stream_step(x, y, alive)
            self._capture(x, y, alive)
            if self._graph is None:  # the capture failed: this step and the rest run eagerly
                return self.step(x, y, lr, alive)
        sx, sy, salive, losses = self._static
        if x.shape != sx.shape or y.shape != sy.shape or alive.shape != salive.shape:
            return self._side_stream_step(x, y, alive)  # another shape than the graph's: an eager step
        sx.copy_(x)
        sy.copy_(y)
        salive.copy_(alive)
        self._graph.replay()  # forward, backward, clipping, AdamW: params and AdamW state update in place
        return losses.clone()  # the static output is overwritten by the next replay

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """Forward, backward, clipping, AdamW update, grads to None: what ``step`` runs eagerly and a graph captures."""
        with self._autocast():
            if self.single:
                _, loss = self.fwd(x[0], y[0])  # ()
            else:
                _, losses = self.fwd(x, y)  # (M,)
        if self.single:
            loss.backward()
            losses = loss.view(1)
        else:
            torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()  # models are independent
        if self.cfg.grad_clip > 0:
            if self.single:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
            else:
                clip_grad_norm_per_model_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses

    def _autocast(self):
        if self.graphs:  # autocast's cache of cast weights must be off for graph capture (torch's CUDA graph notes)
            return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype is torch.bfloat16,
                                  cache_enabled=False)
        return autocast(self.device, self.dtype)

    def _side_stream_step(self, x: torch.Tensor, y: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """An eager step on the side stream, ordered after and before the current stream's work."""
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")  # eager steps before the capture
            losses = self._train_step(x, y, alive)
        current.wait_stream(self._stream)
        return losses

    def _capture(self, x: torch.Tensor, y: torch.Tensor, alive: torch.Tensor) -> None:
        """Capture one step on static copies of x, y, alive; on failure warn once and turn eager (``self.graphs``)."""
        current = torch.cuda.current_stream(self.device)
        static = (x.clone(), y.clone(), alive.clone())  # outside the graph's pool; ``graph`` syncs before capturing
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the grads from the graph's private pool
        try:
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                losses = self._train_step(*static).detach()
        except Exception as err:  # capture records kernels without running them: weights and AdamW state are untouched
            torch.cuda.set_stream(current)  # a failed capture_end leaves the capture stream current
            self.optimizer.zero_grad(set_to_none=True)  # grads of the failed capture hold nothing
            for g in self.optimizer.param_groups:
                g["capturable"] = False
            self.graphs, self._static = False, ()
            log.warning("CUDA graph capture of the proxy training step failed (%s: %s); training on with eager "
                        "steps.", type(err).__name__, err)
            return
        self._graph, self._static = graph, (*static, losses)

    def _graph_groups(self) -> None:
        """AdamW reads its learning rate from the device tensor ``self._lr``, and may be captured."""
        for g in self.optimizer.param_groups:
            g["lr"], g["capturable"] = self._lr, True

    @torch.no_grad()
    def loss_sums(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's summed cross-entropy on the same windows x, y (b, T), float64 (M,)."""
        M = self.n_models
        if self.model.chunked_ce:  # large vocabulary: mean losses without the logits, times the token count
            with autocast(self.device, self.dtype):
                _, loss = self.model(*((x, y) if self.single else (x.expand(M, *x.shape), y.expand(M, *y.shape))))
            return loss.double().view(-1) * y.numel()  # (M,)
        with autocast(self.device, self.dtype):
            logits, _ = self.model(x if self.single else x.expand(M, *x.shape))  # (b, T, V) or (M, b, T, V)
        if self.single:
            return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").double().view(1)
        ce = F.cross_entropy(logits.float().flatten(0, 2), y.expand(M, *y.shape).flatten(), reduction="none")
        return ce.view(M, -1).sum(1).double()  # (M,)

    def branch(self) -> "ModelStack":
        """An independent copy (weights and AdamW state) to train a decay branch on; graphed as this stack is."""
        other = ModelStack(copy.deepcopy(self.model), self.cfg, self.device, self.dtype, graphs=self.graphs)
        other.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))  # load_state_dict alone aliases
        if other.graphs:  # the loaded groups hold a copy of this stack's lr tensor: read the branch's own
            other._graph_groups()
        return other


@torch.no_grad()
def evaluate(stack: ModelStack, sets: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, list[float]]:
    """Each model's mean per-token cross-entropy on each evaluation set (eval mode, no grad): M values per set."""
    stack.model.eval()
    out = {}
    for name, (x, y) in sets.items():
        total = torch.zeros(stack.n_models, dtype=torch.float64, device=stack.device)
        for i in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[i:i + EVAL_BATCH].to(stack.device), y[i:i + EVAL_BATCH].to(stack.device)  # (b, T)
            total += stack.loss_sums(xb, yb)
        out[name] = (total / y.numel()).tolist()
    stack.model.train()
    return out
