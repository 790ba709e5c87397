"""Trains a network exported by `cedsl export --pytorch` on Fashion-MNIST with PyTorch's DistributedDataParallel,
and writes its weights as a safetensors state dict that `cedsl eval`, `cedsl fold` and CeDsl's StateDict.Load read
strictly (docs/python.md).

    cedsl export --model ce-resnet20 --pytorch ce_resnet20.py
    torchrun --nproc_per_node 2 --redirects 1 --tee 1 python/train_ddp.py --network ce_resnet20.py --out runs/ddp
    cedsl eval --checkpoint runs/ddp/model.safetensors --network ce-resnet20

The recipe and the preprocessing are `cedsl train`'s: SGD (momentum 0.9, weight decay 1e-4 on every parameter,
1e-5 on the shifts of selective convolutions), a cosine learning-rate schedule per step, label smoothing 0.1, the
28x28 images scaled to [0, 1], zero-padded to 32x32, a random 2-pixel crop and a horizontal flip, normalized with the
mean and standard deviation of the 60,000 training images. --batch is the images of one step over all processes:
each of R processes trains on --batch / R images of a DistributedSampler's share. --sync-statistics computes the
batch statistics of BN, CE, BD and AII over all processes' images (SyncBN and SyncCE: R processes then compute
what one process computes on the whole batch); without it each process normalizes with its own images, as
DistributedDataParallel does by default.

Run without torchrun it trains in one process. Debian's PyTorch 1.13 on Python 3.11 needs `--redirects 1 --tee 1`
for torchrun to start (docs/python.md).
"""
import argparse
import gzip
import importlib.util
import math
import os
import struct
import time
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import cedsl_torch  # the package beside this script (Python puts the script's folder on the module path)

# `cedsl train`'s input preparation (CeDsl's Fashion-MNIST normalization: all pixels of the 60,000 training images).
MEAN = 0.2860405969887955
STD = 0.35302424457803794
PAD_TO = 32
CROP_PADDING = 2
DEBIAN_DATA = "/usr/share/datasets/fashion-mnist"

# DistributedDataParallel's note on the gradient of a convolution with one input channel, whose strides PyTorch may
# set either way for that dimension of size 1: the same numbers, and too small a tensor to cost anything.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def read_idx(path):
    """The array of an IDX file (gzip or not): uint8 images (N, 28, 28) or labels (N)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        content = f.read()
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] != 0x08:
        raise ValueError(f"'{path}' is not an IDX file of unsigned bytes")
    rank = content[3]
    shape = struct.unpack(f">{rank}I", content[4:4 + 4 * rank])
    data = content[4 + 4 * rank:]
    if len(data) != math.prod(shape):
        raise ValueError(f"'{path}' holds {len(data)} bytes for a {shape} array")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)


def load_split(directory, split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz")).long()
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {images.shape[0]} {split} images but {labels.shape[0]} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images.unsqueeze(1), labels


def prepare(images, generator=None):
    """uint8 (B, 1, 28, 28) -> normalized float32 (B, 1, 32, 32); with a generator, a random crop of the image padded
    by 2 more pixels and a horizontal flip with probability 1/2 (as cedsl train augments)."""
    x = images.float() / 255
    top, left = (PAD_TO - x.shape[2]) // 2, (PAD_TO - x.shape[3]) // 2
    crop = CROP_PADDING if generator is not None else 0
    x = F.pad(x, [left + crop, PAD_TO - x.shape[3] - left + crop, top + crop, PAD_TO - x.shape[2] - top + crop])
    if generator is not None:
        n = x.shape[0]
        offsets = torch.randint(0, 2 * crop + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        rows = offsets[:, 0, None] + torch.arange(PAD_TO)
        columns = offsets[:, 1, None] + torch.arange(PAD_TO)
        columns = torch.where(flips[:, None], columns.flip(1), columns)
        x = x[torch.arange(n)[:, None, None], :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)
    return (x - MEAN) / STD


def load_network(path):
    """The module file `cedsl export --pytorch` wrote: its create() and INPUT_SHAPE."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ValueError(f"--network: '{path}' is not a Python module file (.py)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "create") or not hasattr(module, "INPUT_SHAPE"):
        raise ValueError(f"--network: '{path}' has no create() and INPUT_SHAPE; write it with cedsl export --pytorch")
    if tuple(module.INPUT_SHAPE) != (1, PAD_TO, PAD_TO):
        raise ValueError(f"--network: '{path}' was exported for inputs of {module.INPUT_SHAPE}, Fashion-MNIST's are "
                         f"(1, {PAD_TO}, {PAD_TO}): export it with --input 1x32x32 (cedsl export's default)")
    return module


@torch.no_grad()
def evaluate(model, images, labels, batch=500):
    """Mean cross-entropy (no label smoothing) and top-1 accuracy in evaluation mode, and the logits."""
    training = model.training
    model.eval()
    logits = torch.cat([model(prepare(images[i:i + batch])) for i in range(0, images.shape[0], batch)])
    model.train(training)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item(), logits


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=True, help="the module file written by cedsl export --pytorch")
    parser.add_argument("--out", required=True, help="directory for model.safetensors (the state dict, after every epoch)")
    parser.add_argument("--data", default=DEBIAN_DATA, help=f"directory with the four Fashion-MNIST IDX gzip files [{DEBIAN_DATA}]")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128, help="images per step over all processes (divisible by their number)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--sync-statistics", action="store_true", help="SyncBN and SyncCE: batch statistics over all processes")
    parser.add_argument("--limit-train", type=int, help="train on the first N training images only")
    parser.add_argument("--limit-test", type=int, help="evaluate on the first N test images only")
    parser.add_argument("--steps", type=int, help="stop after N steps (the schedule still spans --epochs)")
    parser.add_argument("--logits", help="also write the final evaluation logits of the test images used, with the test loss and "
                        "accuracy in its metadata (safetensors)")
    arguments = parser.parse_args()
    for name in ("epochs", "batch", "limit_train", "limit_test", "steps"):
        value = getattr(arguments, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive; got {value}")
    return arguments


def main():
    arguments = parse_arguments()
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, ranks = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if arguments.batch % ranks != 0:
        raise SystemExit(f"--batch {arguments.batch} is not divisible by the {ranks} processes")
    per_rank = arguments.batch // ranks

    def log(message):
        if rank == 0:
            print(message, flush=True)

    torch.manual_seed(arguments.seed)  # the same initial weights in every process
    module = load_network(arguments.network)
    model = module.create()
    if arguments.sync_statistics:
        if not distributed:
            raise SystemExit("--sync-statistics synchronizes processes started by torchrun; this is one process")
        cedsl_torch.sync_batch_statistics(model)
    model.to(device)
    trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if distributed else model

    train_images, train_labels = load_split(arguments.data, "train", arguments.limit_train)
    test_images, test_labels = load_split(arguments.data, "test", arguments.limit_test)
    if train_images.shape[0] < arguments.batch:
        raise SystemExit(f"{train_images.shape[0]} training images are fewer than one batch of {arguments.batch}")
    sampler = torch.utils.data.distributed.DistributedSampler(
        range(train_images.shape[0]), num_replicas=ranks, rank=rank, shuffle=True, seed=arguments.seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    optimizer = torch.optim.SGD(cedsl_torch.weight_decay_groups(model, arguments.weight_decay), lr=arguments.lr,
                                momentum=arguments.momentum, dampening=0, nesterov=False)
    augmentation = None if arguments.no_augment else torch.Generator().manual_seed(arguments.seed * 1000 + rank)
    os.makedirs(arguments.out, exist_ok=True)
    checkpoint = os.path.join(arguments.out, "model.safetensors")
    log(f"{type(model).__name__} from {arguments.network}: {ranks} process(es) of {per_rank} images per step, "
        f"{steps_per_epoch} steps per epoch, batch statistics {'synchronized' if arguments.sync_statistics else 'per process'}")

    step, done = 0, False
    for epoch in range(arguments.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        started, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        for index in range(steps_per_epoch):
            rows = order[index * per_rank:(index + 1) * per_rank]
            x, y = prepare(train_images[rows], augmentation).to(device), train_labels[rows].to(device)
            factor = (1 + math.cos(math.pi * min(step / steps_per_epoch, arguments.epochs) / arguments.epochs)) / 2
            for group in optimizer.param_groups:
                group["lr"] = arguments.lr * factor
            logits = trained(x)
            loss = F.cross_entropy(logits, y, label_smoothing=arguments.label_smoothing)
            if not math.isfinite(loss.item()):
                raise SystemExit(f"the training loss is {loss.item()} at step {step + 1}; try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, correct, seen = loss_sum + loss.item() * y.shape[0], correct + (logits.argmax(1) == y).sum().item(), seen + y.shape[0]
            step += 1
            if arguments.steps is not None and step >= arguments.steps:
                done = True
                break
        if rank == 0:
            test_loss, accuracy, logits = evaluate(model, test_images.to(device), test_labels.to(device))
            cedsl_torch.safetensors.save(checkpoint, {k: v.detach().cpu() for k, v in model.state_dict().items()},
                                         {"network": type(model).__name__, "epoch": str(epoch + 1), "step": str(step),
                                          "processes": str(ranks), "sync_statistics": str(arguments.sync_statistics)})
            log(f"epoch {epoch + 1}/{arguments.epochs}  step {step}  train loss {loss_sum / seen:.4f} (rank 0)  "
                f"acc {100 * correct / seen:.2f}%  test loss {test_loss:.4f} acc {100 * accuracy:.2f}%  "
                f"{time.perf_counter() - started:.1f} s  -> {checkpoint}")
            if arguments.logits and (done or epoch + 1 == arguments.epochs):
                cedsl_torch.safetensors.save(arguments.logits, {"logits": logits.cpu()},
                                             {"test_images": str(test_images.shape[0]), "test_loss": repr(test_loss), "test_accuracy": repr(accuracy)})
        if distributed:
            dist.barrier()
        if done:
            break
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
