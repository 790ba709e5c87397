"""Trains one small CE network three SGD steps, either in one process on batches of R*B images or under
torchrun as R DistributedDataParallel ranks of B images each, and records everything the .NET test
(tests/CeDsl.Python.Tests/Distributed/DistributedTrainingTests.cs) compares. It compares nothing itself.

    /usr/bin/python3 ddp_equivalence.py single OUT_DIR --ranks R
    /usr/bin/python3 -m torch.distributed.run --nproc_per_node R ... ddp_equivalence.py ddp OUT_DIR [--local-statistics]

The network has every kind of batch statistic: BN, CE (group 16), BD (24 channels: group 8), CE with 2x2
pooling before its covariance, a standalone AII. ``ddp`` turns on SyncCE and SyncBN
(cedsl_torch.sync_batch_statistics) unless --local-statistics is given.

Files (float64): ``single.safetensors`` or ``rank{r}.safetensors`` with, for steps t = 1..3,
``step{t}.out`` (the logits), ``step{t}.grad_x`` (the input gradient) and ``step{t}.grad.<parameter>`` (the
gradient the optimizer uses: after DDP's averaging), then ``after3.<name>`` for the whole state dict after
the three steps and ``eval.out``, the evaluation-mode logits of the rank's share of a fixed batch.
The loss of step t is sum(logits * G_t) over the process's images, divided by R in the single process so
that its parameter gradients are the ones DDP averages to; its input gradients are therefore 1/R of DDP's.
"""
import argparse
import os

import torch
import torch.distributed as dist
from torch import nn

import cedsl_torch
from cedsl_torch import safetensors

B = 4  # images per rank
STEPS = 3


class SmallCeNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.ce1 = cedsl_torch.ChannelEquilibrium(32, group_size=16)
        self.conv2 = nn.Conv2d(32, 24, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(24)
        self.bd = cedsl_torch.BatchDecorrelation(24, group_size=16)
        self.conv3 = nn.Conv2d(24, 24, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(24)
        self.ce2 = cedsl_torch.ChannelEquilibrium(24, group_size=8, pool=True)
        self.aii = cedsl_torch.AdaptiveInstanceInverse(24)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = torch.relu(self.ce1(self.bn1(self.conv1(x))))
        x = torch.relu(self.bd(self.bn2(self.conv2(x))))
        x = torch.relu(self.aii(self.ce2(self.bn3(self.conv3(x)))))
        return self.fc(x.mean(dim=(2, 3)))


def data(ranks):
    """The same batches in every process: (inputs, upstream gradients) per step, and an evaluation batch."""
    generator = torch.Generator().manual_seed(7)
    steps = [(torch.randn(ranks * B, 3, 8, 8, generator=generator, dtype=torch.float64),
              torch.randn(ranks * B, 10, generator=generator, dtype=torch.float64)) for _ in range(STEPS)]
    return steps, torch.randn(ranks * B, 3, 8, 8, generator=generator, dtype=torch.float64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["single", "ddp"])
    parser.add_argument("out")
    parser.add_argument("--ranks", type=int, default=None, help="R, for the single process (torchrun gives it to ddp)")
    parser.add_argument("--local-statistics", action="store_true", help="ddp without SyncCE and SyncBN")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = SmallCeNetwork().double()
    if args.mode == "ddp":
        dist.init_process_group("gloo")
        rank, ranks = dist.get_rank(), dist.get_world_size()
        if not args.local_statistics:
            cedsl_torch.sync_batch_statistics(model)
        trained = nn.parallel.DistributedDataParallel(model)
        rows, name, loss_scale = slice(rank * B, (rank + 1) * B), f"rank{rank}", 1.0
    else:
        ranks = args.ranks
        trained, rows, name, loss_scale = model, slice(None), "single", 1.0 / ranks

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    steps, evaluation = data(ranks)
    record = {}
    model.train()
    for t, (inputs, upstream) in enumerate(steps, start=1):
        x = inputs[rows].clone().requires_grad_(True)
        optimizer.zero_grad()
        out = trained(x)
        ((out * upstream[rows]).sum() * loss_scale).backward()
        record[f"step{t}.out"] = out.detach()
        record[f"step{t}.grad_x"] = x.grad
        for parameter_name, parameter in model.named_parameters():
            record[f"step{t}.grad.{parameter_name}"] = parameter.grad.clone()
        optimizer.step()
    for state_name, tensor in model.state_dict().items():
        record[f"after3.{state_name}"] = tensor.clone()
    model.eval()
    with torch.no_grad():
        record["eval.out"] = model(evaluation[rows])
    safetensors.save(os.path.join(args.out, f"{name}.safetensors"), record, {"ranks": str(ranks)})
    if args.mode == "ddp":
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
