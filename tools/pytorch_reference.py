#!/usr/bin/env python3
"""PyTorch's side of NormLab: its speed, measured the way `normlab bench` measures, and its
numbers, from the same experiment files.

    python3 tools/pytorch_reference.py train   [--model smallcnn|resnet-D|plain-D] [--batch-sizes 2,8,32,128] [--norm none,batch,...]
    python3 tools/pytorch_reference.py kernels
    python3 tools/pytorch_reference.py sweep experiments/NAME.json --out DIR [--batch-sizes 2,8,32,128] [--norm LIST] [--seeds 0,1,2]

`train` and `kernels` print one JSON object per line, with the same keys as `normlab bench …
--json`; run them alternately with `normlab bench` on the same machine, whose speed drifts
(results/BENCHMARKS.md). `sweep` runs an experiment file's grid (or the part its filters keep)
with the lab's protocol (`tools/pytorch_protocol.py`) and appends each run to DIR/NAME.jsonl in
the lab's results format, resuming like `normlab sweep`; `normlab compare` then puts it beside
the lab's results. Needs PyTorch (`pip install torch numpy`); NormLab itself does not. Two
threads by default, like the lab's benchmarks.
"""
import argparse
import gzip
import re
import json
import pathlib
import statistics
import time

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as error:
    raise SystemExit(f"pytorch_reference.py needs PyTorch and NumPy ({error}): pip install torch numpy")

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "fashion-mnist"
KINDS = ["none", "batch", "layer", "instance", "group"]  # PyTorch has no batch renormalization
# The rest of the family, composed from PyTorch's operations where it has no such layer
# (`bench kernels` only).
FAMILY = ["ghostbatch", "rms", "frn", "evonorm"]


def processor_name():
    """The first "model name" in /proc/cpuinfo, as `normlab bench` reports it ("unknown processor" elsewhere)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.split():
                    return " ".join(value.split())
    except OSError:
        pass
    return "unknown processor"


CPU = processor_name()


def median_seconds(block, minimum_repeats=5, minimum_seconds=0.2):
    """The median time of `block()`, repeated at least `minimum_repeats` times and 0.2 s."""
    block()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < minimum_repeats or time.perf_counter() - start < minimum_seconds:
        t0 = time.perf_counter()
        block()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class GhostBatchNorm(nn.Module):
    """Batch norm over consecutive virtual batches of `size` samples (training)."""
    def __init__(self, channels, size=4):
        super().__init__()
        self.norm, self.size = nn.BatchNorm2d(channels), size

    def forward(self, x):
        if not self.training:
            return self.norm(x)
        return torch.cat([self.norm(chunk) for chunk in x.split(self.size)])


class RMSNorm(nn.Module):
    """y = gamma · x / sqrt(mean over C, H, W of x² + eps), gamma per channel."""
    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.gamma, self.eps = nn.Parameter(torch.ones(channels)), eps

    def forward(self, x):
        return self.gamma.view(1, -1, 1, 1) * x * torch.rsqrt(x.pow(2).mean(dim=(1, 2, 3), keepdim=True) + self.eps)


class FilterResponseNorm(nn.Module):
    """FRN with TLU: max(gamma · x / sqrt(mean over H, W of x² + eps) + beta, tau)."""
    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.tau, self.eps = nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x):
        view = (1, -1, 1, 1)
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return torch.maximum(self.gamma.view(view) * x + self.beta.view(view), self.tau.view(view))


class EvoNormS0(nn.Module):
    """x · sigmoid(v · x) / sqrt(var over the group's channels and H, W + eps) · gamma + beta."""
    def __init__(self, channels, groups, eps=1e-5):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.v, self.groups, self.eps = nn.Parameter(torch.ones(channels)), groups, eps

    def forward(self, x):
        n, c, h, w = x.shape
        view = (1, -1, 1, 1)
        variance = x.view(n, self.groups, -1).var(dim=2, unbiased=False, keepdim=True)
        std = torch.sqrt(variance + self.eps).expand(n, self.groups, c // self.groups * h * w).reshape(x.shape)
        return x * torch.sigmoid(self.v.view(view) * x) / std * self.gamma.view(view) + self.beta.view(view)


def norm_layer(kind, channels):
    if kind == "ghostbatch":
        return GhostBatchNorm(channels)
    if kind == "rms":
        return RMSNorm(channels)
    if kind == "frn":
        return FilterResponseNorm(channels)
    if kind == "evonorm":
        return EvoNormS0(channels, min(8, channels))
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


def small_cnn(kind):
    """The lab's SmallCNN: three conv3x3 → norm → ReLU stages, two max pools, GAP, linear."""
    layers, inputs = [], 1
    for index, width in enumerate([16, 32, 64]):
        layers += [nn.Conv2d(inputs, width, 3, padding=1, bias=kind == "none"), norm_layer(kind, width), nn.ReLU()]
        if index < 2:
            layers.append(nn.MaxPool2d(2))
        inputs = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """conv3x3 → norm → ReLU → conv3x3 → norm, plus the shortcut (the identity, or conv1x1 with
    stride 2 → norm where the shape changes), then ReLU; without shortcuts the same two
    convolutions, each followed by norm → ReLU. As `Sources/NormLab/Model/ResNet.swift`."""

    def __init__(self, kind, inputs, outputs, stride, shortcuts):
        super().__init__()
        bias = kind == "none"
        self.body = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=bias), norm_layer(kind, outputs), nn.ReLU(),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=bias), norm_layer(kind, outputs))
        self.shortcuts = shortcuts
        self.projection = None
        if shortcuts and (stride != 1 or inputs != outputs):
            self.projection = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=bias), norm_layer(kind, outputs))

    def forward(self, x):
        y = self.body(x)
        if self.shortcuts:
            y = y + (self.projection(x) if self.projection is not None else x)
        return torch.relu(y)


def res_net(kind, depth, shortcuts, channels=1, classes=10):
    """He et al. 2016's CIFAR ResNet (depth 6n + 2, widths 16, 32, 64), or the plain network."""
    n = (depth - 2) // 6
    layers = [nn.Conv2d(channels, 16, 3, padding=1, bias=kind == "none"), norm_layer(kind, 16), nn.ReLU()]
    inputs = 16
    for stage, width in enumerate([16, 32, 64]):
        for block in range(n):
            layers.append(BasicBlock(kind, inputs, width, 2 if stage > 0 and block == 0 else 1, shortcuts))
            inputs = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def make_model(name, kind):
    """smallcnn, resnet-D or plain-D, as the lab names them."""
    if name == "smallcnn":
        return small_cnn(kind)
    match = re.fullmatch(r"(resnet|plain)-(\d+)", name)
    if not match or int(match.group(2)) < 8 or (int(match.group(2)) - 2) % 6:
        raise SystemExit(f"unknown model {name!r}: smallcnn, resnet-D or plain-D with D = 6n + 2")
    return res_net(kind, int(match.group(2)), match.group(1) == "resnet")


def training_images():
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (images.astype(np.float32) / 255 - 0.2860) / 0.3530
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def bench_train(model_name, kinds, batch_sizes):
    images, labels = training_images()
    for batch_size in batch_sizes:
        steps = max(1, 256 // batch_size)  # timed blocks of about 256 images, as in the lab
        for kind in kinds:
            torch.manual_seed(0)
            model = make_model(model_name, kind).train()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            loss_function = nn.CrossEntropyLoss()
            position = [0]

            def block():
                for _ in range(steps):
                    if position[0] + batch_size > len(images):
                        position[0] = 0
                    x = images[position[0]:position[0] + batch_size]
                    y = labels[position[0]:position[0] + batch_size]
                    position[0] += batch_size
                    optimizer.zero_grad(set_to_none=True)
                    loss_function(model(x), y).backward()
                    optimizer.step()

            seconds = median_seconds(block)
            print(json.dumps({"framework": "pytorch", "model": model_name, "normalizer": kind, "batch_size": batch_size,
                              "images_per_second": steps * batch_size / seconds, "threads": torch.get_num_threads(),
                              "cpu": CPU}),
                  flush=True)


def bench_kernels(kinds, shapes):
    for shape in shapes:
        for kind in kinds:
            if kind == "none":
                continue
            module = norm_layer(kind, shape[1]) if kind != "layer" else nn.LayerNorm(shape[1:])
            x = torch.randn(*shape, requires_grad=True)
            dy = torch.randn(*shape)

            def forward_training():
                module.train()
                with torch.no_grad():
                    module(x)

            def forward_backward():
                module.train()
                x.grad = None
                module(x).backward(dy)

            def forward_inference():
                module.eval()
                with torch.no_grad():
                    module(x)

            for phase, block in [("forward_training", forward_training), ("forward_backward", forward_backward),
                                 ("forward_inference", forward_inference)]:
                print(json.dumps({"framework": "pytorch", "normalizer": kind, "shape": list(shape), "phase": phase,
                                  "seconds": median_seconds(block, minimum_repeats=20), "cpu": CPU}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["train", "kernels", "sweep"])
    parser.add_argument("experiment", nargs="?", help="sweep: the experiment file")
    parser.add_argument("--out", help="sweep: the output folder")
    parser.add_argument("--seeds", help="sweep: only these seeds (comma-separated)")
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--norm", default=None)
    parser.add_argument("--batch-sizes", default=None)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    if arguments.what == "sweep":
        if not arguments.experiment or not arguments.out:
            parser.error("sweep needs an experiment file and --out DIR")
        import pytorch_protocol

        def numbers(text, name):
            try:
                return [int(value) for value in text.split(",")] if text else None
            except ValueError:
                parser.error(f"{name} takes comma-separated whole numbers, got {text!r}")
        pytorch_protocol.sweep(
            arguments.experiment, arguments.out, arguments.threads,
            batch_sizes=numbers(arguments.batch_sizes, "--batch-sizes"),
            normalizers=arguments.norm.split(",") if arguments.norm else None,
            seeds=numbers(arguments.seeds, "--seeds"))
        return
    arguments.norm = arguments.norm or ",".join(KINDS)
    arguments.batch_sizes = arguments.batch_sizes or "2,8,32,128"
    kinds = arguments.norm.split(",")
    known = KINDS + (FAMILY if arguments.what == "kernels" else [])
    for kind in kinds:
        if kind not in known:
            parser.error(f"unknown normalizer {kind!r}: PyTorch's side has {', '.join(known)}"
                         + (" (PyTorch has no batch renormalization)" if kind == "batchrenorm" else ""))
    try:
        batch_sizes = [int(size) for size in arguments.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes takes comma-separated whole numbers, got {arguments.batch_sizes!r}")
    if any(size < 1 for size in batch_sizes) or arguments.threads < 1:
        parser.error("batch sizes and --threads must be at least 1")
    torch.set_num_threads(arguments.threads)
    if arguments.what == "train":
        make_model(arguments.model, "none")  # the name is checked before any timing
        bench_train(arguments.model, kinds, batch_sizes)
    else:
        bench_kernels(kinds, [(2, 16, 28, 28), (32, 16, 28, 28), (128, 32, 14, 14), (64, 64, 56, 56)])


if __name__ == "__main__":
    main()
