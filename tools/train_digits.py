#!/usr/bin/python3
"""Trains models/digits (regeneration only; the outputs are committed).

Run with Debian's /usr/bin/python3 (python3-sklearn, python3-numpy):
    /usr/bin/python3 tools/train_digits.py [repo root]

Writes
  models/digits/1/model.safetensors  dense net 64-64-10 (relu, softmax), fp32
  tests/data/digits_test.csv         held-out split: 64 raw pixels (0..16), label
  tests/data/digits_reference.json   reference accuracy of the exported weights

The network expects inputs scaled to 0..1 (the model's `normalize` pre stage
multiplies by 1/16). The reference accuracy is computed here with numpy in
fp32 from the exported weights, the same arithmetic the dense backend does.
"""
import json
import os
import struct
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SCALE = 1.0 / 16.0
HIDDEN = 64
SEED = 7


def write_safetensors(path, tensors, metadata):
    """safetensors: u64 LE header length, JSON header, raw little-endian data."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # align the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def forward(x, layers):
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i + 1 < len(layers):
            h = np.maximum(h, 0)
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=SEED, stratify=digits.target)
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", max_iter=600,
                        random_state=SEED)
    clf.fit(x_train * SCALE, y_train)
    # sklearn stores coefs as [in, out]; safetensors (and the backend) use [out, in].
    layers = [(np.asarray(w, np.float32).T.copy(), np.asarray(b, np.float32))
              for w, b in zip(clf.coefs_, clf.intercepts_)]
    probs = forward((x_test * SCALE).astype(np.float32), layers)
    pred = probs.argmax(axis=1)
    correct = int((pred == y_test).sum())
    acc = correct / len(y_test)
    assert acc >= 0.95, acc

    tensors = []
    for i, (w, b) in enumerate(layers):
        tensors.append((f"layers.{i}.weight", w))
        tensors.append((f"layers.{i}.bias", b))
    write_safetensors(os.path.join(root, "models/digits/1/model.safetensors"), tensors,
                      {"format": "ringserve-dense", "activations": "relu,softmax"})
    with open(os.path.join(root, "tests/data/digits_test.csv"), "w") as f:
        f.write("# 64 pixels (0..16, row-major 8x8), label\n")
        for xi, yi in zip(x_test, y_test):
            f.write(",".join(str(int(v)) for v in xi) + f",{int(yi)}\n")
    with open(os.path.join(root, "tests/data/digits_reference.json"), "w") as f:
        json.dump({"rows": len(y_test), "correct": correct, "accuracy": acc}, f)
        f.write("\n")
    print(f"digits: {correct}/{len(y_test)} correct, accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
