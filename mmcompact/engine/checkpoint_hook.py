"""``type='mmcompact.CheckpointHook'``: MMEngine's CheckpointHook with an order of operations that never
leaves a run without a loadable checkpoint."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from ..checkpoint import HASH_SUFFIX, atomic_file, remove_stale_temporaries
from ..registry import HOOKS


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """Same arguments and files as MMEngine's; what differs is the order and atomicity of a save.

    MMEngine 0.10.7 deletes the oldest checkpoint *before* writing the new one and writes
    ``last_checkpoint`` with a plain ``open()``: with ``max_keep_ckpts=1`` a kill during the write leaves no
    checkpoint and a ``last_checkpoint`` naming a deleted file. Here the new checkpoint is written (atomically,
    with its ``.sha256``), then ``last_checkpoint`` is replaced atomically, and only then are checkpoints
    beyond ``max_keep_ckpts`` deleted (with their sidecars). Temporaries of writes killed earlier are removed
    when training starts and at every save.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            remove_stale_temporaries(self.out_dir)

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                               meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        with atomic_file(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            for name in (path, path + HASH_SUFFIX):
                if self.file_backend.isfile(name):
                    self.file_backend.remove(name)
