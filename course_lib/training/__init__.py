"""Training: one loop for every model of the course, likelihood or not.

Where things live:

* :mod:`~course_lib.training.loop`: :func:`train`, the general loop. A *task* says what one
  training step computes (``configure_optimizers``, ``training_step(batch, ctx)``, optionally
  ``evaluate(loader)``); the loop brings epochs, devices, bf16, the progress bar, evaluation,
  checkpoints with exact resume and NaN/inf errors. Read it first.
* :mod:`~course_lib.training.likelihood`: :func:`fit`, maximum likelihood on top of
  :func:`train`, with a :class:`History` in nats and bits per dimension; :func:`evaluate`,
  the test NLL.
* :mod:`~course_lib.training.reconstruction`: :class:`ReconstructionTask`, autoencoders (plain,
  denoising, binary-code) trained on the squared error per image, with the test error.
* :mod:`~course_lib.training.rbm`: :class:`ContrastiveDivergenceTask`, restricted Boltzmann machines
  trained by CD-k or persistent CD (the chains and their generator carried in checkpoints).
* :mod:`~course_lib.training.ebm`: :class:`EBMTask`, energy models trained by Langevin
  dynamics from a replay buffer (Du & Mordatch, 2019), the buffer carried in checkpoints.
* :mod:`~course_lib.training.skipgram`: :class:`SkipGramTask`, word vectors by skip-gram with
  negative sampling (real pairs against noise pairs drawn by the task's own generator).
* :mod:`~course_lib.training.task_common`: what those task classes share (a batch's inputs, checked
  settings, the cosine or linear decay of the learning rate).
* :mod:`~course_lib.training.history`: :class:`TrainHistory`, what :func:`train` measured.
* :mod:`~course_lib.training.checkpoint`: saving and restoring a run, random states included.
"""

from course_lib.training.checkpoint import CheckpointMismatchError, load_checkpoint
from course_lib.training.ebm import EBMTask
from course_lib.training.history import TrainHistory
from course_lib.training.likelihood import History, StepInfo, default_loss, evaluate, fit
from course_lib.training.loop import NonFiniteLossError, StepContext, StepResult, to_device, train
from course_lib.training.rbm import ContrastiveDivergenceTask
from course_lib.training.reconstruction import ReconstructionTask
from course_lib.training.skipgram import SkipGramTask

__all__ = [
    "CheckpointMismatchError",
    "ContrastiveDivergenceTask",
    "EBMTask",
    "History",
    "NonFiniteLossError",
    "ReconstructionTask",
    "SkipGramTask",
    "StepContext",
    "StepInfo",
    "StepResult",
    "TrainHistory",
    "default_loss",
    "evaluate",
    "fit",
    "load_checkpoint",
    "to_device",
    "train",
]
