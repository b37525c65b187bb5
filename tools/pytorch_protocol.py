"""An experiment file's grid run in PyTorch, with the lab's protocol, written in the lab's format.

The same protocol, not the same bits: the same networks (`experiments/README.md`), Kaiming-normal
weights, the same data and standardization, SGD with momentum and weight decay on convolution and
linear weights only, a cosine decay per step, a fresh shuffle each epoch with the last incomplete
batch dropped, batch renorm's clipping schedule, PreciseBN, and a run stopped as diverged at the
first non-finite loss. PyTorch draws its own random numbers, so single runs differ from the lab's;
means over seeds should agree within the noise, and `normlab compare` says whether they do.

Used by `tools/pytorch_reference.py sweep`.
"""
import datetime
import gzip
import json
import math
import pathlib
import re
import time

import numpy as np
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
FLOAT_SETTINGS = ["epsilon", "norm_momentum", "base_lr", "lr", "weight_decay", "sgd_momentum"]


def float32(value):
    """A setting as the lab records it: the shortest decimal of its Float (0.05, not 0.05000000074505806)."""
    return float(str(np.float32(value)))


# --- Experiment files: the lab's defaults, grid and order (Sources/NormLab/Experiments/Experiment.swift).

def load_experiment(path):
    with open(path) as file:
        raw = json.load(file)
    if raw.get("format") != "normlab-experiment/1":
        raise SystemExit(f"{path}: not a normlab-experiment/1 file")
    rate = raw["learning_rate"]
    bases = rate["base"] if isinstance(rate["base"], list) else [rate["base"]]
    models = raw.get("model", "smallcnn")
    placements = raw.get("placement", "before")
    return {
        "name": raw["name"],
        "data": raw.get("data", "embedded"),
        "train_size": raw.get("train_size"),
        "test_size": raw.get("test_size"),
        "models": [model.lower() for model in (models if isinstance(models, list) else [models])],
        "zero_init_residual": raw.get("zero_init_residual", False),
        "epochs": raw["epochs"],
        "bases": bases,
        "scaling": rate.get("scaling", "linear"),
        "reference": rate.get("reference_batch_size", 32),
        "weight_decay": raw.get("weight_decay", 5e-4),
        "sgd_momentum": raw.get("sgd_momentum", 0.9),
        "placements": placements if isinstance(placements, list) else [placements],
        "normalizers": raw["normalizers"],
        "batch_sizes": raw["batch_sizes"],
        "seeds": raw["seeds"],
        "precise_bn": raw.get("precise_bn", {"images": 2000, "batch_size": 200}) or None,
        "jsonl": raw.get("outputs", {}).get("jsonl", raw["name"] + ".jsonl"),
    }


def grid(experiment, train_size):
    """Every run's settings, as a results record holds them, seeds outermost (the lab's order)."""
    runs = []
    for seed in experiment["seeds"]:
        for batch_size in experiment["batch_sizes"]:
            for model in experiment["models"]:
                for base in experiment["bases"]:
                    for placement in experiment["placements"]:
                        for entry in experiment["normalizers"]:
                            kind = entry["kind"]
                            lr = float32(np.float32(base) * np.float32(batch_size) / np.float32(experiment["reference"])) \
                                if experiment["scaling"] == "linear" else float32(base)
                            spec = {
                                "experiment": experiment["name"], "model": model, "label": entry.get("label", kind),
                                "normalizer": kind, "epsilon": float32(entry.get("eps", 1e-5)),
                                "placement": placement, "batch_size": batch_size, "epochs": experiment["epochs"],
                                "base_lr": float32(base), "lr": lr, "lr_scaling": experiment["scaling"],
                                "weight_decay": float32(experiment["weight_decay"]),
                                "sgd_momentum": float32(experiment["sgd_momentum"]), "seed": seed,
                                "data": experiment["data"], "train_size": train_size,
                            }
                            if model.startswith("resnet-"):
                                spec["zero_init_residual"] = experiment["zero_init_residual"]
                            if kind in ("batch", "batchrenorm"):
                                spec["norm_momentum"] = float32(entry.get("momentum", 0.1))
                            if kind == "group" and "groups" in entry:
                                spec["groups"] = entry["groups"]
                            if kind == "batchrenorm":
                                schedule = {"warmup": 0.05, "rmax": 3.0, "rmax_ramp_end": 0.5, "dmax": 5.0, "dmax_ramp_end": 0.3}
                                schedule.update(entry.get("renorm_schedule", {}))
                                spec["renorm_schedule"] = schedule
                            if experiment["test_size"] is not None:
                                spec["test_size"] = experiment["test_size"]
                            runs.append(spec)
    return runs


# --- Data (Sources/NormLab/Data): Fashion-MNIST IDX files, or CIFAR-10's binary batches.

def read_idx(folder, name):
    for path in [folder / (name + ".gz"), folder / name]:
        if path.exists():
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            rank = raw[3]
            shape = [int.from_bytes(raw[4 + 4 * axis:8 + 4 * axis], "big") for axis in range(rank)]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(shape)
    raise SystemExit(f"{folder} has no {name} or {name}.gz")


def load_data(experiment):
    """(train images, train labels, test images, test labels) as standardized tensors."""
    data = experiment["data"]
    folder = ROOT / "data" / "fashion-mnist" if data == "embedded" else pathlib.Path(data)
    cifar = next((path for path in [folder, folder / "cifar-10-batches-bin"] if (path / "data_batch_1.bin").exists()), None)
    if cifar is not None:
        def batches(names):
            raw = np.concatenate([np.fromfile(cifar / name, np.uint8).reshape(-1, 3073) for name in names])
            return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]
        train_x, train_y = batches([f"data_batch_{i}.bin" for i in range(1, 6)])
        test_x, test_y = batches(["test_batch.bin"])
        scaled = train_x.astype(np.float64) / 255
        mean = scaled.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
        std = scaled.std(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    else:
        train_x = read_idx(folder, "train-images-idx3-ubyte")[:, None]
        train_y = read_idx(folder, "train-labels-idx1-ubyte")
        test_x = read_idx(folder, "t10k-images-idx3-ubyte")[:, None]
        test_y = read_idx(folder, "t10k-labels-idx1-ubyte")
        mean, std = FASHION_MNIST_MEAN, FASHION_MNIST_STD
    if experiment["train_size"]:
        train_x, train_y = train_x[:experiment["train_size"]], train_y[:experiment["train_size"]]
    if experiment["test_size"]:
        test_x, test_y = test_x[:experiment["test_size"]], test_y[:experiment["test_size"]]

    def tensor(images):
        return torch.from_numpy(((images.astype(np.float64) / 255 - mean) / std).astype(np.float32))
    return tensor(train_x), torch.from_numpy(train_y.astype(np.int64)), tensor(test_x), torch.from_numpy(test_y.astype(np.int64))


# --- Normalizers: PyTorch's, and batch renormalization (Ioffe 2017) composed from its operations.

class BatchRenorm2d(nn.Module):
    """y = γ (x̂ r + d) + β with r = clip(σ_B/σ, 1/rmax, rmax), d = clip((μ_B - μ)/σ, -dmax, dmax),
    both held constant in backpropagation; running mean μ and running std σ (σ_B includes ε).
    Inference: γ (x - μ)/σ + β. As Sources/NormLab/Normalizers/BatchRenorm.swift."""

    def __init__(self, channels, eps, momentum):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_std", torch.ones(channels))
        self.eps, self.momentum, self.rmax, self.dmax = eps, momentum, 1.0, 0.0
        self.estimated_batches = None  # during PreciseBN: batches averaged so far

    def forward(self, x):
        shape = (1, -1, 1, 1)
        if not self.training:
            normalized = (x - self.running_mean.view(shape)) / self.running_std.view(shape)
        else:
            mean = x.mean(dim=(0, 2, 3))
            std = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + self.eps)
            with torch.no_grad():
                momentum, rmax, dmax = self.momentum, self.rmax, self.dmax
                if self.estimated_batches is not None:
                    momentum, rmax, dmax = 1 / (self.estimated_batches + 1), 1.0, 0.0
                    self.estimated_batches += 1
                r = torch.clamp(std / self.running_std, 1 / rmax, rmax)
                d = torch.clamp((mean - self.running_mean) / self.running_std, -dmax, dmax)
                self.running_mean += momentum * (mean - self.running_mean)
                self.running_std += momentum * (std - self.running_std)
            normalized = (x - mean.view(shape)) / std.view(shape) * r.view(shape) + d.view(shape)
        return normalized * self.weight.view(shape) + self.bias.view(shape)


def norm_layer(spec, channels):
    kind, eps = spec["normalizer"], spec["epsilon"]
    if kind == "batch":
        return nn.BatchNorm2d(channels, eps=eps, momentum=spec["norm_momentum"])
    if kind == "batchrenorm":
        return BatchRenorm2d(channels, eps, spec["norm_momentum"])
    if kind == "layer":
        return nn.GroupNorm(1, channels, eps=eps)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, eps=eps, affine=True)
    if kind == "group":
        return nn.GroupNorm(spec.get("groups") or min(8, channels), channels, eps=eps)
    return nn.Identity()


# --- Models (experiments/README.md): smallcnn, resnet-D and plain-D.

def conv_norm_relu(spec, inputs, outputs, stride=1):
    conv = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=spec["normalizer"] == "none")
    if spec["placement"] == "after":
        return [conv, nn.ReLU(), norm_layer(spec, outputs)]
    return [conv, norm_layer(spec, outputs), nn.ReLU()]


class Block(nn.Module):
    """A basic block: conv3×3 → norm → ReLU → conv3×3 → norm, plus the shortcut (the identity,
    or conv1×1 stride 2 → norm), then ReLU; plain-D has no shortcut. With zero_init_residual the
    last norm's γ starts at 0, or, without normalization, a scalar on the branch (SkipInit)."""

    def __init__(self, spec, inputs, outputs, stride, shortcuts):
        super().__init__()
        bias = spec["normalizer"] == "none"
        last = norm_layer(spec, outputs)
        self.body = nn.Sequential(*conv_norm_relu(spec, inputs, outputs, stride),
                                  nn.Conv2d(outputs, outputs, 3, padding=1, bias=bias), last)
        self.shortcuts = shortcuts
        self.projection = None
        if shortcuts and (stride != 1 or inputs != outputs):
            self.projection = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=bias), norm_layer(spec, outputs))
        self.skip_init = None
        if spec.get("zero_init_residual"):
            if hasattr(last, "weight") and last.weight is not None:
                nn.init.zeros_(last.weight)
            else:
                self.skip_init = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        y = self.body(x)
        if self.skip_init is not None:
            y = y * self.skip_init
        if self.shortcuts:
            y = y + (self.projection(x) if self.projection is not None else x)
        return torch.relu(y)


def make_model(spec, channels, classes):
    name = spec["model"]
    if name == "smallcnn":
        layers, inputs = [], channels
        for index, width in enumerate([16, 32, 64]):
            layers += conv_norm_relu(spec, inputs, width)
            if index < 2:
                layers.append(nn.MaxPool2d(2))
            inputs = width
    else:
        match = re.fullmatch(r"(resnet|plain)-(\d+)", name)
        if not match or int(match.group(2)) < 8 or (int(match.group(2)) - 2) % 6:
            raise SystemExit(f"unknown model {name!r}: smallcnn, resnet-D or plain-D with D = 6n + 2")
        blocks = (int(match.group(2)) - 2) // 6
        layers, inputs = conv_norm_relu(spec, channels, 16), 16
        for stage, width in enumerate([16, 32, 64]):
            for block in range(blocks):
                layers.append(Block(spec, inputs, width, 2 if stage > 0 and block == 0 else 1, match.group(1) == "resnet"))
                inputs = width
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


# --- Training (Sources/NormLab/Training): one run, as the lab's Trainer and PreciseBN do it.

def renorm_bounds(schedule, step, total):
    progress = step / total if total > 0 else 1

    def ramp(final, start, end):
        if progress <= schedule["warmup"]:
            return start
        if end <= schedule["warmup"]:
            return final
        return start + (final - start) * min(1, (progress - schedule["warmup"]) / (end - schedule["warmup"]))
    return ramp(schedule["rmax"], 1.0, schedule["rmax_ramp_end"]), ramp(schedule["dmax"], 0.0, schedule["dmax_ramp_end"])


def accuracy(model, images, labels):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), 500):
            correct += (model(images[start:start + 500]).argmax(1) == labels[start:start + 500]).sum().item()
    return correct / len(images)


def precise_bn(model, images, plan, seed):
    """Recomputes batch norm's and batch renorm's statistics as equal-weight averages over
    `plan["images"]` training images in batches of `plan["batch_size"]`, weights frozen."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, BatchRenorm2d))]
    saved = []
    for norm in norms:
        if isinstance(norm, nn.BatchNorm2d):
            saved.append(norm.momentum)
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average
        else:
            norm.estimated_batches = 0
    generator = torch.Generator().manual_seed(seed + 1)
    sample = torch.randperm(len(images), generator=generator)[:plan["images"]]
    model.train()
    with torch.no_grad():
        for start in range(0, len(sample), plan["batch_size"]):
            model(images[sample[start:start + plan["batch_size"]]])
    for norm in norms:
        if isinstance(norm, nn.BatchNorm2d):
            norm.momentum = saved.pop(0)
        else:
            norm.estimated_batches = None


def train(spec, data, plan, threads):
    """One run of the grid: its record's result fields."""
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(spec["seed"])
    model = make_model(spec, train_x.shape[1], int(max(train_y.max(), test_y.max())) + 1)
    decaying = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    others = [p for p in model.parameters() if all(p is not w for w in decaying)]
    optimizer = torch.optim.SGD([{"params": decaying, "weight_decay": spec["weight_decay"]},
                                 {"params": others, "weight_decay": 0.0}],
                                lr=spec["lr"], momentum=spec["sgd_momentum"])
    renorms = [m for m in model.modules() if isinstance(m, BatchRenorm2d)]
    batch = spec["batch_size"]
    steps_per_epoch = len(train_x) // batch
    total = steps_per_epoch * spec["epochs"]
    generator = torch.Generator().manual_seed(spec["seed"])
    loss_function = nn.CrossEntropyLoss()
    step, diverged, epoch_loss, epoch_steps = 0, False, 0.0, 0
    start = time.perf_counter()
    model.train()
    for _ in range(spec["epochs"]):
        order = torch.randperm(len(train_x), generator=generator)
        epoch_loss, epoch_steps = 0.0, 0
        for index in range(steps_per_epoch):
            rate = spec["lr"] * (1 + math.cos(math.pi * step / total)) / 2
            for group in optimizer.param_groups:
                group["lr"] = rate
            if renorms:
                rmax, dmax = renorm_bounds(spec["renorm_schedule"], step, total)
                for norm in renorms:
                    norm.rmax, norm.dmax = rmax, dmax
            chosen = order[index * batch:(index + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(train_x[chosen]), train_y[chosen])
            step += 1
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()
            epoch_steps += 1
        if diverged:
            break
    seconds = time.perf_counter() - start
    test_accuracy = None if diverged else accuracy(model, test_x, test_y)
    precise = None
    if not diverged and plan and spec["normalizer"] in ("batch", "batchrenorm"):
        precise_bn(model, train_x, plan, spec["seed"])
        precise = accuracy(model, test_x, test_y)
    final_loss = epoch_loss / epoch_steps if epoch_steps else None
    trained = (step - 1 if diverged else step) * batch
    return {
        "test_accuracy": test_accuracy, "precise_bn_accuracy": precise,
        "final_loss": final_loss if final_loss is not None and math.isfinite(final_loss) else None,
        "diverged": diverged, "diverged_at_step": step if diverged else None, "steps": step,
        "seconds": seconds, "images_per_second": trained / seconds if seconds > 0 else 0, "threads": threads,
        "commit": "pytorch-" + torch.__version__,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def record_key(spec):
    """What identifies a run in a results file: every setting (the floats as the lab writes them)."""
    return json.dumps({key: spec[key] for key in sorted(spec)}, sort_keys=True)


def sweep(path, out, threads, batch_sizes=None, normalizers=None, seeds=None):
    """Runs the grid (or the part the filters keep), appending each record to OUT/NAME.jsonl
    as it finishes and skipping runs already there, like `normlab sweep`."""
    torch.set_num_threads(threads)
    experiment = load_experiment(path)
    data = load_data(experiment)
    runs = [spec for spec in grid(experiment, len(data[0]))
            if (batch_sizes is None or spec["batch_size"] in batch_sizes)
            and (normalizers is None or spec["label"] in normalizers)
            and (seeds is None or spec["seed"] in seeds)]
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / experiment["jsonl"]
    done = set()
    if results.exists():
        lines = results.read_text().split("\n")
        if lines[-1]:  # a last line cut short by a crash
            results.write_text("\n".join(lines[:-1]) + "\n" if len(lines) > 1 else "")
        for line in lines[:-1]:
            if line.strip():
                record = json.loads(line)
                done.add(record_key({key: record[key] for key in runs[0] if key in record}))
    pending = [spec for spec in runs if record_key(spec) not in done]
    print(f"pytorch sweep {experiment['name']}: {len(runs)} runs, {len(runs) - len(pending)} already recorded, "
          f"{threads} thread{'s' if threads > 1 else ''}", flush=True)
    for number, spec in enumerate(pending, 1):
        result = train(spec, data, experiment["precise_bn"], threads)
        record = dict(spec, **result)
        with open(results, "a") as file:
            file.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
            file.flush()
        shown = "diverged" if result["diverged"] else f"{100 * result['test_accuracy']:.2f}%"
        print(f"  {number}/{len(pending)}: {spec['model']} {spec['label']} batch {spec['batch_size']} seed {spec['seed']}: "
              f"{shown}, {result['seconds']:.0f} s", flush=True)
    return results
