"""Writes the PyTorch fixtures of the zoo's state-dict compatibility tests.

    cd tests/CeDsl.Networks.Tests/Fixtures && /usr/bin/python3 make_zoo_fixtures.py

- ce_resnet20_pytorch.safetensors: a CE-ResNet-20 for 1x32x32 inputs and 10 classes built in
  PyTorch with torchvision's ResNet layout and the CE module written from the semantics page
  docs/semantics/channel-equilibrium.md (tests/CeDsl.Runtime.Tests/Fixtures/reference/ce_reference.py),
  after two SGD steps on random data so that every running statistic has moved. ce_resnet20_io.safetensors: an input batch, the
  evaluation-mode logits, the training-mode logits and the running statistics after that
  training-mode forward (prefixed "after.").

The released CE-ResNet-50 is checked with fixtures made from the authors' own code:
tests/CeDsl.Runtime.Tests/Fixtures/released/make_released_fixtures.py.

Deterministic: fixed seeds, CPU; a second run rewrites byte-identical files.
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_FIXTURES = os.path.join(HERE, "..", "..", "CeDsl.Runtime.Tests", "Fixtures")
sys.path.insert(0, RUNTIME_FIXTURES)
sys.path.insert(0, os.path.join(RUNTIME_FIXTURES, "reference"))
import make_safetensors_fixture as safetensors  # noqa: E402  the one writer of the fixtures
from ce_reference import ChannelEquilibrium  # noqa: E402


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ce = ChannelEquilibrium(planes, group_size=16, reduction=4)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.ce(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class CeResNet20(nn.Module):
    def __init__(self, in_channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.ce1 = ChannelEquilibrium(16, group_size=64, reduction=4)
        self.relu = nn.ReLU()
        planes = 16
        for index, (width, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(planes, width, stride if b == 0 else 1))
                planes = width
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.ce1(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def state(module):
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def make_ce_resnet20():
    torch.manual_seed(20)
    model = CeResNet20()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    for _ in range(2):
        images = torch.randn(8, 1, 32, 32)
        labels = torch.randint(0, 10, (8,))
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    saved = state(model)
    safetensors.save(os.path.join(HERE, "ce_resnet20_pytorch.safetensors"), saved)

    images = torch.randn(4, 1, 32, 32)
    io_tensors = {"input": images}
    with torch.no_grad():
        model.eval()
        io_tensors["eval_logits"] = model(images)
        trained = copy.deepcopy(model)
        trained.train()
        io_tensors["train_logits"] = trained(images)
        for key, value in trained.state_dict().items():
            if "running" in key or "num_batches" in key:
                io_tensors["after." + key] = value.detach().clone().contiguous()
    safetensors.save(os.path.join(HERE, "ce_resnet20_io.safetensors"), io_tensors)


def main():
    torch.set_num_threads(1)
    make_ce_resnet20()


if __name__ == "__main__":
    main()
