#!/usr/bin/env python3
"""Writes the safetensors fixtures read by tests/CeDsl.Runtime.Tests/IO/PythonFixtureTests.cs.

Independent of CeDsl and of the `safetensors` package (not installed on the build machine): a
minimal writer that follows the format description in https://github.com/huggingface/safetensors
(README "Format") and the reference writer's conventions (tensors sorted by descending dtype
alignment, then by name; compact JSON; header padded with spaces to a multiple of 8), using only
json, struct and torch.

    /usr/bin/python3 make_safetensors_fixture.py            # (re)writes the fixtures next to this script
    /usr/bin/python3 make_safetensors_fixture.py --check F  # reads F with an independent validating reader

Outputs:
  pytorch_dtypes.safetensors      one tensor per dtype; metadata "expected" holds, as JSON, each
                                  tensor's dtype, shape and values as torch reports them (.tolist()).
  pytorch_sequential.safetensors  state_dict() of Sequential(Conv2d(3,4,3,padding=1), BatchNorm2d(4),
                                  ReLU, Flatten, Linear(100,3)) after 3 SGD training steps, float32.
  pytorch_sequential_io.safetensors  "input" (2,3,5,5) and the eval-mode "output" of that model.
"""
import json
import os
import struct
import sys

import torch

# name and position in the reference's Dtype enum (declared in increasing alignment order)
DTYPES = {
    torch.bool: ("BOOL", 0),
    torch.uint8: ("U8", 1),
    torch.int8: ("I8", 2),
    torch.int16: ("I16", 3),
    torch.float16: ("F16", 4),
    torch.bfloat16: ("BF16", 5),
    torch.int32: ("I32", 6),
    torch.float32: ("F32", 7),
    torch.complex64: ("C64", 8),
    torch.float64: ("F64", 9),
    torch.int64: ("I64", 10),
}
BY_NAME = {name: dtype for dtype, (name, _) in DTYPES.items()}


def raw_bytes(tensor):
    tensor = tensor.detach().cpu().contiguous().reshape(-1)
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
        tensor = tensor.view(torch.int16)
    return tensor.numpy().tobytes()


def save(path, tensors, metadata=None):
    assert sys.byteorder == "little"
    order = sorted(tensors, key=lambda name: (-DTYPES[tensors[name].dtype][1], name.encode("utf-8")))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in order:
        data = raw_bytes(tensors[name])
        header[name] = {
            "dtype": DTYPES[tensors[name].dtype][0],
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def load(path):
    """Independent reader applying the reference's validation rules."""
    with open(path, "rb") as f:
        content = f.read()
    (n,) = struct.unpack("<Q", content[:8])
    assert 8 + n <= len(content), "header length past end"
    text = content[8 : 8 + n]
    assert text[:1] == b"{", "header must start with {"
    header = json.loads(text.decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    data = content[8 + n :]
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"])
    covered, tensors = 0, {}
    for name, info in entries:
        begin, end = info["data_offsets"]
        assert begin == covered and end >= begin, f"bad offsets for {name}"
        dtype = BY_NAME[info["dtype"]]
        numel = 1
        for d in info["shape"]:
            numel *= d
        size = torch.empty((), dtype=dtype).element_size()
        assert end - begin == numel * size, f"size mismatch for {name}"
        raw = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.uint8) if end > begin else torch.empty(0, dtype=torch.uint8)
        if dtype == torch.bool:
            tensor = raw.to(torch.bool)
        else:
            tensor = raw.view(dtype)
        tensors[name] = tensor.reshape(info["shape"])
        covered = end
    assert covered == len(data), "data section not fully covered"
    return header, metadata, tensors


def values(tensor):
    flat = tensor.reshape(-1)
    if flat.is_complex():
        return [[z.real, z.imag] for z in flat.tolist()]
    return flat.tolist()


def make_dtypes(directory):
    tensors = {
        "f64": torch.tensor([[0.1, -2.5, 1e-300], [1.7976931348623157e308, -0.0, 3.141592653589793]], dtype=torch.float64),
        "f32": torch.tensor([0.1, -1.5, 3.4028234663852886e38, 1.1754943508222875e-38], dtype=torch.float32),
        "f16": torch.tensor([0.5, -65504.0, 6.103515625e-05, 0.1], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0, 3.3895313892515355e38, 0.1], dtype=torch.bfloat16),
        "c64": torch.tensor([1 + 2j, -0.5 + 0.25j], dtype=torch.complex64),
        "i64": torch.tensor([-9223372036854775808, 9223372036854775807, 0, -1], dtype=torch.int64),
        "i32": torch.tensor([-2147483648, 2147483647, 7], dtype=torch.int32),
        "i16": torch.tensor([[-32768, 32767], [1, -1]], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 128], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }
    expected = {
        name: {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape), "values": values(t)}
        for name, t in tensors.items()
    }
    metadata = {"expected": json.dumps(expected), "generator": f"make_safetensors_fixture.py, torch {torch.__version__}"}
    save(os.path.join(directory, "pytorch_dtypes.safetensors"), tensors, metadata)


def make_sequential(directory):
    torch.manual_seed(20240601)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 3),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(3):
        loss = model(torch.randn(8, 3, 5, 5)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        y = model(x)
    save(os.path.join(directory, "pytorch_sequential.safetensors"), model.state_dict(), {"format": "pt"})
    save(os.path.join(directory, "pytorch_sequential_io.safetensors"), {"input": x, "output": y})
    for name, tensor in model.state_dict().items():
        print(f"{name:28} {str(tensor.dtype):15} {list(tensor.shape)}")
    print("output", y.tolist())


def check(path):
    header, metadata, tensors = load(path)
    print("metadata:", metadata)
    for name, tensor in tensors.items():
        print(f"{name:28} {header[name]['dtype']:5} {list(tensor.shape)} {values(tensor)[:6]}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        make_dtypes(here)
        make_sequential(here)
        for name in ("pytorch_dtypes.safetensors", "pytorch_sequential.safetensors", "pytorch_sequential_io.safetensors"):
            check(os.path.join(here, name))
