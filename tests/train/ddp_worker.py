"""One rank of test_distributed's gradient check, launched by torchrun (not a test module).

``python -m tests.train.ddp_worker OUT --set=KEY=VALUE ...`` builds the real Trainer, takes its
first batch, and computes the gradient of one training step twice: on this rank's batch alone
(the unwrapped model) and through the DDP wrapper. It writes ``OUT/rank<R>.pt`` with the batch's
sample names and both flattened gradients, as the optimizer would receive them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from emavfi.config import load_config
from emavfi.train.config import TrainConfig
from emavfi.train.distributed import cleanup, init_distributed
from emavfi.train.loop import Trainer, _Meter


def _flat_grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten()
            for p in model.parameters()
        ]
    )


def main(out: Path, sets: list[str]) -> None:
    cfg = load_config(TrainConfig, None, sets)
    info = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, info)
        batch = next(trainer._epoch_batches())
        grads = []
        # record what the optimizer would get, and leave the weights as they are
        trainer._apply_update = lambda finite, loss: grads.append(_flat_grads(trainer.model))
        ddp_model = trainer.ddp_model
        assert ddp_model is not trainer.model, "not wrapped for distributed training"
        # the local step first: it must not run through DDP's gradient hooks
        for model in (trainer.model, ddp_model):
            trainer.ddp_model = model
            torch.manual_seed(0)
            trainer._train_step(batch, _Meter(trainer.device))
        result = {"names": list(batch["name"]), "local": grads[0], "ddp": grads[1]}
        torch.save(result, out / f"rank{info.rank}.pt")
    finally:
        cleanup(info)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [arg.removeprefix("--set=") for arg in sys.argv[2:]])
