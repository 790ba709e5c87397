"""A small reader and writer of the safetensors format (PyTorch 1.13 has none): a little-endian u64 header
length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}} and the raw
row-major tensor bytes. The files CeDsl reads and writes (checkpoints, state dicts) are of this format."""
import json
import os
import struct
import sys

import torch

# safetensors name -> torch dtype, in the format's alignment order (the writer sorts by it, descending)
DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "F16": torch.float16,
    "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32, "C64": torch.complex64,
    "F64": torch.float64, "I64": torch.int64,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
ALIGNMENT = {name: rank for rank, name in enumerate(DTYPES)}


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    if flat.dtype in (torch.bfloat16, torch.float16, torch.bool):  # numpy has no bfloat16
        flat = flat.view(torch.int16 if flat.dtype != torch.bool else torch.uint8)
    return flat.numpy().tobytes()


def save(path: str, tensors: dict, metadata: dict = None):
    """Writes ``tensors`` (name -> tensor) atomically: the file appears whole or not at all."""
    if sys.byteorder != "little":
        raise RuntimeError("safetensors: this writer runs on little-endian machines only")
    for name, tensor in tensors.items():
        if tensor.dtype not in NAMES:
            raise ValueError(f"safetensors: '{name}' has the unsupported dtype {tensor.dtype}")
    order = sorted(tensors, key=lambda name: (-ALIGNMENT[NAMES[tensors[name].dtype]], name))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in order:
        data = _raw_bytes(tensors[name])
        header[name] = {"dtype": NAMES[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load(path: str):
    """Reads a whole file: (tensors, metadata), every offset and size checked."""
    with open(path, "rb") as f:
        content = f.read()

    def invalid(problem):
        return ValueError(f"'{path}' is not a valid safetensors file: {problem}")

    if len(content) < 8:
        raise invalid("shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", content[:8])
    if 8 + length > len(content):
        raise invalid(f"header length {length} runs past the end ({len(content)} bytes)")
    try:
        header = json.loads(content[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise invalid(f"unreadable header: {e}") from e
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(content)[8 + length:]
    tensors, covered = {}, 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        if info["dtype"] not in DTYPES:
            raise invalid(f"'{name}' has the unknown dtype {info['dtype']}")
        dtype = DTYPES[info["dtype"]]
        size = torch.empty((), dtype=dtype).element_size()
        numel = 1
        for dimension in info["shape"]:
            numel *= dimension
        if begin != covered or end - begin != numel * size:
            raise invalid(f"'{name}' has offsets {info['data_offsets']}, expected [{covered}, {covered + numel * size}]")
        raw = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.uint8) if end > begin else torch.empty(0, dtype=torch.uint8)
        tensors[name] = (raw.to(torch.bool) if dtype == torch.bool else raw.view(dtype)).reshape(info["shape"])
        covered = end
    if covered != len(data):
        raise invalid(f"{len(data) - covered} bytes follow the last tensor")
    return tensors, metadata
