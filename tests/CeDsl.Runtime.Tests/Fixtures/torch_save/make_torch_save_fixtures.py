"""Writes the torch.save fixtures read by tests/CeDsl.Runtime.Tests/IO/PyTorchFileTests.cs.

    cd tests/CeDsl.Runtime.Tests/Fixtures/torch_save && /usr/bin/python3 make_torch_save_fixtures.py

Every file is written by PyTorch's own torch.save (Debian's python3-torch 1.13, the zip format):
  sequential.pt        model.state_dict() of the Sequential whose state is ../pytorch_sequential.safetensors
                       (Conv2d(3,4,3,padding=1), BatchNorm2d(4), ReLU, Flatten, Linear(100,3)), an OrderedDict
                       with its _metadata attribute.
  checkpoint.pth       the layout of the PyTorch ImageNet example (which the CE authors' released checkpoints
                       follow): {"epoch", "arch", "best_acc1" (a tensor), "state_dict" (of nn.DataParallel(model):
                       every key prefixed "module."), "optimizer" (SGD state after one step: int keys,
                       momentum buffers, lists, floats, None)}.
  tensors.pt           a dict of the tensors of ../pytorch_dtypes.safetensors (every dtype, a scalar, an empty
                       tensor) plus views sharing one storage: "matrix" (3x4 float64), "row" (matrix[1], storage
                       offset 4), "transposed" (matrix.t(), strides (1, 4)); tensors_expected.safetensors holds
                       contiguous copies of all of them, written by the independent safetensors writer.
  hostile_system.pt    {"state_dict": {"weight": tensor, "payload": obj}} where obj pickles as a call of
                       os.system("echo ran > /tmp/cedsl-hostile-pickle-ran") (the global posix.system).
  hostile_class.pt     {"weight": tensor, "payload": an instance of a class defined here (__main__.Payload)}.
  legacy.pt            the Sequential's state dict in the legacy format (_use_new_zipfile_serialization=False).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import make_safetensors_fixture as safetensors  # noqa: E402  the independent safetensors reader and writer


class SystemCall:
    def __reduce__(self):
        return (os.system, ("echo ran > /tmp/cedsl-hostile-pickle-ran",))


class Payload:
    def __init__(self):
        self.note = "not a tensor"


def sequential():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3))
    _, _, state = safetensors.load(os.path.join(HERE, "..", "pytorch_sequential.safetensors"))
    model.load_state_dict(state, strict=True)
    return model


def main():
    model = sequential()
    torch.save(model.state_dict(), os.path.join(HERE, "sequential.pt"))
    torch.save(model.state_dict(), os.path.join(HERE, "legacy.pt"), _use_new_zipfile_serialization=False)

    parallel = torch.nn.DataParallel(model)
    optimizer = torch.optim.SGD(parallel.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for p in parallel.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()  # momentum buffers in the optimizer state; the weights moved by the step are what is saved
    torch.save({"epoch": 90, "arch": "sequential", "best_acc1": torch.tensor(76.5), "state_dict": parallel.state_dict(),
                "optimizer": optimizer.state_dict()}, os.path.join(HERE, "checkpoint.pth"))
    safetensors.save(os.path.join(HERE, "checkpoint_expected.safetensors"), model.state_dict())

    _, _, tensors = safetensors.load(os.path.join(HERE, "..", "pytorch_dtypes.safetensors"))
    matrix = torch.arange(12, dtype=torch.float64).reshape(3, 4) / 8
    tensors.update({"matrix": matrix, "row": matrix[1], "transposed": matrix.t()})
    torch.save(tensors, os.path.join(HERE, "tensors.pt"))
    safetensors.save(os.path.join(HERE, "tensors_expected.safetensors"), {k: v.contiguous() for k, v in tensors.items()})

    weight = torch.ones(2, 2)
    torch.save({"state_dict": {"weight": weight, "payload": SystemCall()}}, os.path.join(HERE, "hostile_system.pt"))
    torch.save({"weight": weight, "payload": Payload()}, os.path.join(HERE, "hostile_class.pt"))

    for name in sorted(os.listdir(HERE)):
        print(f"{name:36} {os.path.getsize(os.path.join(HERE, name)):8} bytes")


if __name__ == "__main__":
    main()
