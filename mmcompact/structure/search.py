"""Block-wise distillation of every candidate in one pass over the data, held-out scores, and the check that
block scores add up to whole-network quality.

Per batch the frozen teacher backbone runs once; forward hooks record each block's input x_b and output y_b,
and every candidate c of block b learns x_b -> y_b with the normalised MSE ||f(x_b) - y_b||^2 / Var(y_b)
(mean over elements). Candidates never see each other's outputs, so training them in one optimizer is the
same as training each alone. With searchable widths (``SearchSpace.widths``) a candidate of input width
w_in and output width w_out reads the first w_in of the teacher's channels at its input boundary and learns
the first w_out at its output boundary, channels ranked once by the teacher's variance
(``CandidateBank.set_channel_orders``); its error counts the dropped channels at their variance. Two options
change what a block sees:

- ``progressive``: block b > 0 gets, instead of the teacher's x_b, the (detached) output of one candidate
  of block b - 1 on its own input, the candidate drawn per iteration (uniformly, from the seed and the
  iteration, so resume stays exact): block training sees what an assembled student feeds it.
- ``plateau=dict(patience, min_delta)``: after every epoch each candidate's held-out normalised MSE is
  measured; a candidate that has not improved on its best by a factor (1 - min_delta) for ``patience``
  epochs stops training (its weights stay), and the search ends early once every candidate has stopped;
  ``epochs`` is then the upper bound.

The state (weights, optimizer, position, RNG, plateau bookkeeping) is checkpointed atomically every
``checkpoint_interval`` iterations and resumes to the same result.
"""
import math
import os
import random
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_reduce, barrier, is_distributed, is_main_process
from mmengine.logging import MMLogger
from mmengine.registry import OPTIMIZERS
from torch import nn

from ..checkpoint import safe_load, save_atomic
from ..models.candidates import OutputAffine
from ..utils import Recorder, rng_state, set_rng_state
from .knapsack import draw_structure
from .space import SearchSpace, assemble

STATE_FILE = 'search_state.pth'


def normalised_mse(output: torch.Tensor, target: torch.Tensor,
                   channels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """||output - target||^2 / Var(target), averaged over elements; 0 is a perfect block.

    ``channels`` (a narrowed output, (N, len(channels), H, W)): the target channels the output stands for;
    every other channel of ``target`` counts as predicted by its mean, so dropping channels costs the variance
    they carried and scores of different widths compare on the teacher's whole feature."""
    if channels is None:
        selected, dropped = target, None
    else:
        keep = torch.zeros(target.shape[1], dtype=torch.bool, device=target.device)
        keep[channels] = True
        selected, dropped = target.index_select(1, channels), target[:, ~keep]
    if output.shape != selected.shape:
        raise ValueError(f'candidate output {tuple(output.shape)} does not match the teacher block output '
                         f'{tuple(selected.shape)}: the candidate does not keep the block interface')
    error = (output - selected).pow(2).sum()
    if dropped is not None and dropped.shape[1]:
        error = error + (dropped - dropped.mean((0, 2, 3), keepdim=True)).pow(2).sum()
    return error / target.numel() / target.var().clamp_min(1e-12)


def check_plateau(plateau: Optional[dict]) -> Optional[dict]:
    """``structure_search.plateau`` checked and completed (None: train every candidate for ``epochs``)."""
    if plateau is None:
        return None
    unknown = set(plateau) - {'patience', 'min_delta'}
    settings = dict(dict(patience=1, min_delta=0.02), **plateau)
    patience, min_delta = settings['patience'], settings['min_delta']
    if unknown or not isinstance(patience, int) or patience < 1 or not 0 <= min_delta < 1:
        raise ValueError(f'structure_search.plateau must be dict(patience=<int >= 1>, min_delta=<in [0, 1)>), '
                         f'got {plateau}')
    return settings


class CandidateBank(nn.Module):
    """All candidates of all blocks; forward(block inputs, block outputs) -> (blocks x candidates) losses.
    Unchanged teacher blocks stay frozen in eval mode (their error is 0 by construction).

    With searchable widths, buffer ``order_j`` ranks the teacher's channels at boundary j (most variance
    first, set once by ``set_channel_orders`` and saved with the weights): a candidate of width w at that
    boundary reads or writes the first w of them."""

    def __init__(self, space: SearchSpace, teacher_backbone: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(space.build(b, c, teacher_backbone) for c in range(len(space.menus[b])))
            for b in range(len(space.blocks)))
        self.frozen = [self.blocks[b][c] for b in range(len(space.blocks)) for c in range(len(space.menus[b]))
                       if space.is_teacher_block(b, c)]
        for module in self.frozen:
            module.requires_grad_(False)
        self.interfaces = space.interfaces
        self.searched_widths = bool(space.widths)
        channels = [space.blocks[0].interface.in_channels] + [b.interface.out_channels for b in space.blocks]
        for j, c in enumerate(channels):
            self.register_buffer(f'order_{j}', torch.arange(c))

    def order(self, j: int) -> torch.Tensor:
        """Teacher channels at boundary j, most important first."""
        return getattr(self, f'order_{j}')

    @torch.no_grad()
    def set_channel_orders(self, outputs: Sequence[torch.Tensor]) -> None:
        """Rank each boundary j >= 1 by the per-channel variance of the teacher block output ``outputs[j-1]``
        (boundary 0, the first block's input, keeps its order)."""
        for j, y in enumerate(outputs, 1):
            self.order(j).copy_(torch.argsort(y.var((0, 2, 3)), descending=True, stable=True))

    def channels(self, j: int, width: int, full: int) -> Optional[torch.Tensor]:
        """The teacher channels a width-``width`` tensor at boundary j stands for (None: all ``full``)."""
        return None if width == full else self.order(j)[:width]

    def train(self, mode: bool = True) -> 'CandidateBank':
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                active: Optional[Sequence[Sequence[bool]]] = None,
                feed: Optional[Sequence[int]] = None) -> List[torch.Tensor]:
        """Per block, the losses of its candidates (NaN where ``active[b][c]`` is False: not computed).

        ``feed``: progressive mode: block b > 0 takes the detached output of candidate ``feed[b - 1]`` of
        block b - 1 instead of ``inputs[b]`` (block 0 always takes ``inputs[0]``)."""
        losses, fed = [], None
        for b, (candidates, y) in enumerate(zip(self.blocks, targets)):
            x = inputs[b] if fed is None else fed
            row, outputs = [], {}
            for c, candidate in enumerate(candidates):
                if active is None or active[b][c]:
                    interface = self.interfaces[b][c]
                    read = self.channels(b, interface.in_channels, x.shape[1])
                    outputs[c] = candidate(x if read is None else x.index_select(1, read))
                    row.append(normalised_mse(outputs[c], y,
                                              self.channels(b + 1, interface.out_channels, y.shape[1])))
                else:
                    row.append(torch.full((), float('nan'), device=y.device))
            losses.append(torch.stack(row))
            if feed is not None and b + 1 < len(self.blocks):
                chosen = feed[b]
                if chosen in outputs:
                    fed = outputs[chosen].detach()
                else:
                    with torch.no_grad():
                        fed = candidates[chosen](x)
        return losses


class TeacherBlocks:
    """Runs the frozen teacher backbone on a preprocessed batch and returns every block's (input, output)."""

    def __init__(self, model: nn.Module, space: SearchSpace):
        self.model = model
        specs = {}
        for block in space.blocks:
            specs[f'{block.path}:in'] = dict(module=block.path, kind='input')
            specs[f'{block.path}:out'] = block.path
        self.paths = [block.path for block in space.blocks]
        self.recorder = Recorder(model.backbone, specs, 'teacher backbone')

    @torch.no_grad()
    def __call__(self, batch: dict):
        inputs = self.model.data_preprocessor(batch, False)['inputs']
        with self.recorder.recording():
            final = self.model.backbone(inputs)
            xs = [self.recorder.get(f'{p}:in') for p in self.paths]
            ys = [self.recorder.get(f'{p}:out') for p in self.paths]
        return inputs, xs, ys, final


class BlockwiseDistillation:
    """Trains a ``CandidateBank`` against the teacher; ``run()`` resumes from ``work_dir`` when asked.

    Args:
        model: the teacher model (classifier or detector), frozen and in eval mode.
        space: the search space.
        train_loader / val_loader: MMEngine dataloaders of the teacher's data.
        work_dir: where ``search_state.pth`` is written.
        epochs (the upper bound with ``plateau``), optimizer (an MMEngine optimizer config),
        checkpoint_interval, log_interval.
        plateau: ``dict(patience=1, min_delta=0.02)`` to stop each candidate at its held-out plateau.
        progressive: feed block b the output of a drawn candidate of block b - 1 (module docstring).
        seed: draws of the progressive mode.
    """

    def __init__(self, model: nn.Module, space: SearchSpace, train_loader, val_loader, work_dir: str,
                 epochs: int = 4, optimizer: Optional[dict] = None, checkpoint_interval: int = 100,
                 log_interval: int = 20, plateau: Optional[dict] = None, progressive: bool = False,
                 seed: int = 0):
        if epochs < 1:
            raise ValueError(f'structure_search.epochs must be >= 1, got {epochs}')
        if progressive and space.widths:
            raise ValueError('structure_search.progressive cannot be combined with structure_search.widths '
                             '(a block of one width cannot feed candidates of another): set one of them off')
        self.plateau = check_plateau(plateau)
        self.progressive, self.seed = progressive, seed
        # per candidate: not stopped at a plateau; best held-out score; epochs since it improved
        self.active = [[True] * len(menu) for menu in space.menus]
        self.best = [[math.inf] * len(menu) for menu in space.menus]
        self.stale = [[0] * len(menu) for menu in space.menus]
        self.model, self.space = model, space
        self.teacher = TeacherBlocks(model, space)
        self.bank = CandidateBank(space, model.backbone)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.work_dir, self.epochs = work_dir, epochs
        self.checkpoint_interval, self.log_interval = checkpoint_interval, log_interval
        self.net = self.bank
        if is_distributed():
            self.net = nn.parallel.DistributedDataParallel(  # stopped candidates get no gradients
                self.bank, broadcast_buffers=False, find_unused_parameters=self.plateau is not None)
        optimizer = dict(optimizer or dict(type='Adam', lr=1e-3))
        self.base_lr = optimizer['lr']
        self.optimizer = OPTIMIZERS.build(
            dict(optimizer, params=[p for p in self.bank.parameters() if p.requires_grad]))
        self.iters_per_epoch = len(train_loader)
        if self.iters_per_epoch == 0:
            raise ValueError('the training dataloader of the structure search is empty: check '
                             'train_dataloader.dataset (data_root, ann_file, data_prefix)')
        # per epoch, the mean training loss per (b, c); None once the candidate stopped at its plateau
        self.history: List[List[List[Optional[float]]]] = []
        self.logger = MMLogger.get_current_instance()

    @property
    def state_path(self) -> str:
        return os.path.join(self.work_dir, STATE_FILE)

    def _save(self, epoch: int, step: int, epoch_rng: dict, running: torch.Tensor) -> None:
        if is_main_process():
            save_atomic(dict(bank=self.bank.state_dict(), optimizer=self.optimizer.state_dict(), epoch=epoch,
                             step=step, epoch_rng=epoch_rng, running=running, history=self.history,
                             labels=self.space.labels, blocks=[b.path for b in self.space.blocks],
                             plateau=dict(active=self.active, best=self.best, stale=self.stale)),
                        self.state_path, overwrite=True)
        barrier()

    def _load(self) -> dict:
        state = safe_load(self.state_path, map_location='cpu')
        if state['labels'] != self.space.labels or state['blocks'] != [b.path for b in self.space.blocks]:
            raise ValueError(f'{self.state_path} was written by a search over other blocks or candidates: '
                             'resume with the same config, or use a new --work-dir')
        self.bank.load_state_dict(state['bank'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.history = state['history']
        if 'plateau' in state:
            self.active, self.best, self.stale = (state['plateau'][k] for k in ('active', 'best', 'stale'))
        return state

    def run(self, resume: bool = False, progress: Optional[Callable[[int], None]] = None) -> None:
        """Train every candidate for ``epochs`` epochs; ``progress(1)`` is called after each iteration."""
        start_epoch, start_step, state = 0, 0, None
        if resume and os.path.isfile(self.state_path):
            state = self._load()
            start_epoch, start_step = state['epoch'], state['step']
            self.logger.info(f'structure search: resumed from {self.state_path} at epoch {start_epoch}, '
                             f'iteration {start_step}')
            if progress:
                progress(start_epoch * self.iters_per_epoch + start_step)
        total = self.epochs * self.iters_per_epoch
        self.bank.train()
        if state is None:
            self.calibrate(next(iter(self.train_loader)))
        if self.progressive:
            self.check_consecutive(next(iter(self.train_loader)))
        for epoch in range(start_epoch, self.epochs):
            if self.plateau is not None and not any(map(any, self.active)):
                self.logger.info(f'structure search: every candidate reached its plateau; stopped after '
                                 f'epoch {epoch} of at most {self.epochs}')
                if progress:
                    progress((self.epochs - epoch) * self.iters_per_epoch)
                break
            if state is not None and epoch == state['epoch']:
                epoch_rng, running = state['epoch_rng'], state['running']
                set_rng_state(epoch_rng)
            else:
                epoch_rng, running = rng_state(), None
            sampler = getattr(self.train_loader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epoch)
            first = start_step if epoch == start_epoch else 0
            for step, batch in enumerate(self.train_loader):
                if step < first:  # replay the data order (and augmentation RNG) up to the resume point
                    continue
                losses = self._train_step(batch, epoch * self.iters_per_epoch + step, total)
                running = losses if running is None else running + losses
                if (step + 1) % self.log_interval == 0:
                    self.logger.info(f'structure search: epoch {epoch + 1} iter {step + 1}/'
                                     f'{self.iters_per_epoch} mean block loss {losses.nanmean():.4f}')
                if progress:
                    progress(1)
                if (step + 1) % self.checkpoint_interval == 0 and step + 1 < self.iters_per_epoch:
                    self._save(epoch, step + 1, epoch_rng, running)
            mean = (running / self.iters_per_epoch).tolist()  # NaN: stopped at its plateau -> None
            self.history.append([[None if math.isnan(v) else v for v in row[:len(labels)]]
                                 for row, labels in zip(mean, self.space.labels)])
            if self.plateau is not None:
                self._update_plateau(epoch + 1)
            self._save(epoch + 1, 0, rng_state(), None)

    def _update_plateau(self, epoch: int) -> None:
        """Held-out scores after ``epoch``: stop the candidates that no longer improve."""
        scores = self.scores()
        factor = 1 - self.plateau['min_delta']
        for b, row in enumerate(scores):
            for c, score in enumerate(row):
                if not self.active[b][c]:
                    continue
                if score < self.best[b][c] * factor:
                    self.best[b][c], self.stale[b][c] = score, 0
                else:
                    self.best[b][c] = min(self.best[b][c], score)
                    self.stale[b][c] += 1
                if self.stale[b][c] >= self.plateau['patience']:
                    self.active[b][c] = False
                    self.logger.info(f'structure search: {self.space.blocks[b].path} '
                                     f'{self.space.labels[b][c]} reached its plateau after epoch {epoch} '
                                     f'(held-out normalised MSE {self.best[b][c]:.4f})')

    @torch.no_grad()
    def check_consecutive(self, batch: dict) -> None:
        """Progressive mode needs each block's input to be the previous block's output in the teacher."""
        _, xs, ys, _ = self.teacher(batch)
        for b in range(1, len(xs)):
            if xs[b].shape != ys[b - 1].shape or not torch.equal(xs[b], ys[b - 1]):
                raise ValueError(
                    f'structure_search.progressive: the input of {self.space.blocks[b].path} is not the output '
                    f'of {self.space.blocks[b - 1].path} in the teacher; list consecutive blocks in '
                    'structure_search.blocks or set progressive=False')

    def feed_choice(self, iteration: int) -> Optional[List[int]]:
        """Progressive mode: the candidate of each block (but the last) whose output feeds the next block at
        ``iteration`` (drawn from the seed and the iteration alone); None otherwise."""
        if not self.progressive:
            return None
        rng = random.Random(self.seed * 1_000_003 + iteration)
        return [rng.randrange(len(menu)) for menu in self.space.menus[:-1]]

    @torch.no_grad()
    def calibrate(self, batch: dict) -> None:
        """Data-dependent init: the channel order of every boundary (searchable widths), then every
        candidate's ``OutputAffine``: per channel, match the mean and std of its output (training mode) on
        ``batch`` to the teacher block's. Without it, Adam needs thousands of steps to move BatchNorm affines
        to the scale of trained features (often tens)."""
        _, xs, ys, _ = self.teacher(batch)
        if self.space.widths:
            self.bank.set_channel_orders(ys)
        for b, (candidates, x, y) in enumerate(zip(self.bank.blocks, xs, ys)):
            for c, candidate in enumerate(candidates):
                if isinstance(candidate, nn.Sequential) and isinstance(candidate[-1], OutputAffine):
                    interface = self.space.interfaces[b][c]
                    read = self.bank.channels(b, interface.in_channels, x.shape[1])
                    written = self.bank.channels(b + 1, interface.out_channels, y.shape[1])
                    target = y if written is None else y.index_select(1, written)
                    y_mean, y_std = target.mean((0, 2, 3)), target.std((0, 2, 3))
                    out = candidate[0](x if read is None else x.index_select(1, read))
                    out_std = out.std((0, 2, 3))
                    # channels that are (nearly) constant on the batch, e.g. dead after a ReLU, keep scale 1
                    live = out_std > 1e-3 * y_std.clamp_min(1e-6)
                    weight = torch.where(live, y_std / out_std.clamp_min(1e-12), torch.ones_like(y_std))
                    candidate[-1].weight.copy_(weight)
                    candidate[-1].bias.copy_(y_mean - weight * out.mean((0, 2, 3)))

    def _train_step(self, batch: dict, iteration: int, total: int) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group['lr'] = 0.5 * self.base_lr * (1 + math.cos(math.pi * iteration / total))
        _, xs, ys, _ = self.teacher(batch)
        losses = self.net(xs, ys, self.active, self.feed_choice(iteration))
        self.optimizer.zero_grad()
        total = torch.stack([loss.nansum() for loss in losses]).sum()
        if total.requires_grad:  # False when only frozen teacher blocks are still active
            total.backward()
        self.optimizer.step()
        return self._padded([loss.detach() for loss in losses])

    def _padded(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """(blocks, max candidates) tensor, NaN where a block has fewer candidates."""
        out = torch.full((len(rows), max(len(r) for r in rows)), float('nan'))
        for b, row in enumerate(rows):
            out[b, :len(row)] = row
        return out

    @torch.no_grad()
    def scores(self) -> List[List[float]]:
        """Held-out normalised MSE of every candidate (eval mode), averaged over the validation batches."""
        self.bank.eval()
        total, count = None, torch.zeros(())
        for batch in self.val_loader:
            _, xs, ys, _ = self.teacher(batch)
            losses = self._padded(self.bank(xs, ys))
            total = losses if total is None else total + losses
            count += 1
        if total is None:
            raise ValueError('the validation dataloader of the structure search is empty: check '
                             'val_dataloader.dataset')
        all_reduce(total)
        all_reduce(count)
        mean = total / count
        self.bank.train()
        return [mean[b, :len(labels)].tolist() for b, labels in enumerate(self.space.labels)]

    @torch.no_grad()
    def whole_network_error(self, choice: Sequence[int]) -> float:
        """Held-out normalised MSE between the backbone outputs of the assembled student (the block-
        distilled candidates of ``choice`` in the teacher) and of the teacher, averaged over outputs."""
        modules = [self.bank.blocks[b][c] for b, c in enumerate(choice)]
        last = len(self.space.blocks)
        student = assemble(self.model, self.space, choice, modules, self.bank.order(last)).eval()
        total, count = torch.zeros(()), torch.zeros(())
        for batch in self.val_loader:
            inputs, _, _, final = self.teacher(batch)
            outs = student.backbone(inputs)
            outs, final = (outs, final) if isinstance(final, tuple) else ((outs, ), (final, ))
            total += sum(normalised_mse(o, t, self.bank.channels(last, o.shape[1], t.shape[1]))
                         for o, t in zip(outs, final)) / len(final)
            count += 1
        all_reduce(total)
        all_reduce(count)
        return float(total / count)


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (average ranks for ties)."""
    def ranks(values):
        values = np.asarray(values, dtype=np.float64)
        order = np.argsort(values, kind='stable')
        r = np.empty(len(values))
        r[order] = np.arange(len(values))
        for v in np.unique(values):
            r[values == v] = r[values == v].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float('nan')
    return float(np.corrcoef(ra, rb)[0, 1])


def sample_choices(space: SearchSpace, count: int, seed: int, draws: int = 10000) -> List[tuple]:
    """``count`` distinct random configurations (fewer when the space, or ``draws`` tries, give fewer)."""
    rng = random.Random(seed)
    sizes = [len(m) for m in space.menus]
    seen = []
    for _ in range(draws):
        if len(seen) == count:
            break
        choice = draw_structure(rng, sizes, space.links)
        if choice not in seen:
            seen.append(choice)
    return seen


def additivity_check(search: BlockwiseDistillation, scores: List[List[float]], count: int,
                     seed: int) -> Dict[str, object]:
    """Predicted (sum of block scores) vs measured (whole-network error) on ``count`` random
    configurations; returns both lists and Spearman's rho."""
    choices = sample_choices(search.space, count, seed)
    predicted = [sum(scores[b][c] for b, c in enumerate(choice)) for choice in choices]
    measured = [search.whole_network_error(choice) for choice in choices]
    return dict(choices=[list(c) for c in choices], predicted=predicted, measured=measured,
                spearman=rank_correlation(predicted, measured))
