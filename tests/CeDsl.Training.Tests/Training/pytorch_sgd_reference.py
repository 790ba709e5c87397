"""Reference for TrainerPyTorchParityTests: PyTorch's own SGD, label-smoothed cross-entropy and
per-step learning rates on the same tiny problem. Run with Debian's python3-torch:
    /usr/bin/python3 tests/CeDsl.Training.Tests/Training/pytorch_sgd_reference.py
and paste its output into the test."""
import torch

pixels = torch.tensor([[(i * 37 + k * 11) % 256 for k in range(4)] for i in range(6)], dtype=torch.float32) / 255
labels = torch.tensor([i % 3 for i in range(6)])
model = torch.nn.Linear(4, 3)
with torch.no_grad():
    model.weight.copy_(torch.tensor([[(r * 4 + c) * 0.05 - 0.3 for c in range(4)] for r in range(3)]))
    model.bias.copy_(torch.tensor([0.1, -0.2, 0.05]))
optimizer = torch.optim.SGD(
    [{"params": [model.weight], "weight_decay": 0.01}, {"params": [model.bias], "weight_decay": 0.0}],
    lr=0.5, momentum=0.9, nesterov=True)
# warmup(1 epoch, from 0.5) * step([2], x0.1), one step per epoch: factors 0.5, 1, 0.1.
for lr in [0.25, 0.5, 0.05]:
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(pixels), labels, label_smoothing=0.1)
    loss.backward()
    optimizer.step()
    print(f"loss {loss.item():.9g}")
print("weight", ", ".join(f"{v:.9g}f" for v in model.weight.detach().flatten().tolist()))
print("bias", ", ".join(f"{v:.9g}f" for v in model.bias.detach().tolist()))
