#!/usr/bin/env python3
"""Reference fixtures for NormLab's normalizers (`normlab-fixture/1`, Tests/Fixtures/normalizers/FORMAT.md).

    python3 tools/fixtures.py check FILE_OR_DIR...     recompute every fixture's expected values
                                                       and compare them with the stored ones
    python3 tools/fixtures.py make KIND --shape 4,3,5,5 [--mode training|inference] [--groups G]
                                   [--eps E] [--momentum M] [--rmax R --dmax D] [--virtual-batch-size V]
                                   [--seed S] [--name NAME]
    python3 tools/fixtures.py make conv_ws --shape 2,3,6,6 --out-channels 4 [--kernel 3] [--stride 1]
                                   [--padding 1] [--seed S] [--name NAME]
                                                       print a new fixture (JSON) on standard output

The reference is PyTorch in float64 (`F.batch_norm`, `F.layer_norm`, `F.group_norm`, `F.conv2d`,
with autograd for the gradients) and, for the methods PyTorch lacks, float64 transcriptions of
their definitions (FORMAT.md): batch renormalization (Ioffe 2017, Algorithm 1, with r and d held
constant in backpropagation), ghost batch norm (`F.batch_norm` on each virtual batch in turn),
FRN with TLU, RMSNorm, EvoNorm-S0 and weight-standardized convolutions. `check` is a second opinion
on the committed fixtures; `make` writes new cases for `normlab verify` and the test suite (inputs,
gamma, beta, grad_output and state are exactly representable in float32, as the format asks).
Needs PyTorch and NumPy (`pip install torch numpy`); NormLab itself does not.
"""
import argparse
import json
import pathlib
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as error:
    raise SystemExit(f"fixtures.py needs PyTorch and NumPy ({error}): pip install torch numpy")

KINDS = ["batch", "layer", "instance", "group", "batchrenorm", "ghostbatch", "frn", "rms", "evonorm"]
# Each kind's learnable per-channel vectors besides gamma, and whether it has beta.
EXTRA_PARAMETERS = {"frn": ["tau"], "evonorm": ["v"]}
WITHOUT_BETA = {"rms"}
FORMAT = "normlab-fixture/1"


class FixtureError(Exception):
    """A fixture file that does not follow the format."""


def tensor(values, shape=None):
    t = torch.tensor(values, dtype=torch.float64)
    return t.reshape(shape) if shape is not None else t


def reference_conv_ws(case):
    """`expected` for a weight-standardized convolution (`conv_ws` cases)."""
    spec = case["conv_ws"]
    x = tensor(case["input"]["data"], case["input"]["shape"]).requires_grad_(True)
    w = tensor(case["weight"]["data"], case["weight"]["shape"]).requires_grad_(True)
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = flat.var(dim=1, unbiased=False, keepdim=True)
    w_hat = ((flat - mean) / torch.sqrt(var + spec["eps"])).reshape(w.shape)
    y = F.conv2d(x, w_hat, stride=spec["stride"], padding=spec["padding"])
    y.backward(tensor(case["grad_output"]["data"], case["grad_output"]["shape"]))
    return {"output": y.detach().flatten().tolist(), "grad_input": x.grad.flatten().tolist(), "grad_weight": w.grad.flatten().tolist()}


def reference(case):
    """Computes `expected` (output, gradients, state after) for a fixture's inputs.

    Raises ValueError or RuntimeError when the reference itself rejects the case."""
    if "conv_ws" in case:
        return reference_conv_ws(case)
    spec, mode = case["normalizer"], case["mode"]
    kind, channels, eps = spec["kind"], spec["channels"], spec["eps"]
    shape = case["input"]["shape"]
    if len(shape) not in (2, 4) or shape[1] != channels:
        raise ValueError(f"input shape {shape} does not have {channels} channels on axis 1 of a 2-D or 4-D tensor")
    x = tensor(case["input"]["data"], shape).requires_grad_(True)
    gamma = tensor(case["gamma"]).requires_grad_(True)
    beta = tensor(case["beta"] if kind not in WITHOUT_BETA else [0.0] * channels).requires_grad_(kind not in WITHOUT_BETA)
    extra = {name: tensor(case[name]).requires_grad_(True) for name in EXTRA_PARAMETERS.get(kind, [])}
    dy = tensor(case["grad_output"], shape)
    training = mode == "training"
    axes = [0] + list(range(2, len(shape)))  # the batch-style axes: N (and H, W)
    view = [1, channels] + [1] * (len(shape) - 2)
    state_after = None
    # An error case may leave the state out: then it starts as PyTorch's does.
    state = case.get("state", {"running_mean": [0.0] * channels, "running_var": [1.0] * channels, "running_std": [1.0] * channels})
    if kind == "batch":
        mean = tensor(state["running_mean"])
        var = tensor(state["running_var"])
        y = F.batch_norm(x, mean, var, gamma, beta, training=training, momentum=spec["momentum"], eps=eps)
        if training:
            state_after = {"running_mean": mean.tolist(), "running_var": var.tolist()}
    elif kind == "batchrenorm":
        mu = tensor(state["running_mean"])
        sigma = tensor(state["running_std"])
        if training:
            if x.numel() // channels < 2:
                raise ValueError("batch renormalization in training needs more than one value per channel")
            mu_b = x.mean(dim=axes)
            sigma_b = torch.sqrt(x.var(dim=axes, unbiased=False) + eps)
            rmax, dmax = spec["rmax"], spec["dmax"]
            r = torch.clamp(sigma_b / sigma, 1 / rmax, rmax).detach()
            d = torch.clamp((mu_b - mu) / sigma, -dmax, dmax).detach()
            x_hat = (x - mu_b.reshape(view)) / sigma_b.reshape(view) * r.reshape(view) + d.reshape(view)
            m = spec["momentum"]
            state_after = {
                "running_mean": (mu + m * (mu_b.detach() - mu)).tolist(),
                "running_std": (sigma + m * (sigma_b.detach() - sigma)).tolist(),
            }
        else:
            x_hat = (x - mu.reshape(view)) / sigma.reshape(view)
        y = gamma.reshape(view) * x_hat + beta.reshape(view)
    elif kind == "layer":
        y = F.layer_norm(x, (channels,), gamma, beta, eps) if len(shape) == 2 else F.group_norm(x, 1, gamma, beta, eps)
    elif kind == "instance":
        if len(shape) != 4:
            raise ValueError("instance norm needs [N, C, H, W] input")
        y = F.group_norm(x, channels, gamma, beta, eps)
    elif kind == "group":
        y = F.group_norm(x, spec["groups"], gamma, beta, eps)
    elif kind == "ghostbatch":
        mean = tensor(state["running_mean"])
        var = tensor(state["running_var"])
        if training:
            size = spec["virtual_batch_size"]
            # Each virtual batch in turn, as batch norm would normalize it alone; the running
            # statistics are updated after each.
            y = torch.cat([
                F.batch_norm(x[start:start + size], mean, var, gamma, beta, training=True, momentum=spec["momentum"], eps=eps)
                for start in range(0, shape[0], size)])
            state_after = {"running_mean": mean.tolist(), "running_var": var.tolist()}
        else:
            y = F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
    elif kind == "frn":
        if len(shape) != 4:
            raise ValueError("filter response normalization needs [N, C, H, W] input")
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        y = torch.maximum(gamma.reshape(view) * x / torch.sqrt(nu2 + eps) + beta.reshape(view), extra["tau"].reshape(view))
    elif kind == "rms":
        dims = tuple(range(1, len(shape)))
        y = gamma.reshape(view) * x / torch.sqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    elif kind == "evonorm":
        if len(shape) != 4:
            raise ValueError("EvoNorm-S0 needs [N, C, H, W] input")
        groups = spec["groups"]
        var = x.reshape(shape[0], groups, -1).var(dim=2, unbiased=False, keepdim=True)
        std = torch.sqrt(var + eps).expand(shape[0], groups, channels // groups * shape[2] * shape[3]).reshape(shape)
        y = x * torch.sigmoid(extra["v"].reshape(view) * x) / std * gamma.reshape(view) + beta.reshape(view)
    else:
        raise FixtureError(f"unknown normalizer kind {kind!r} (one of {', '.join(KINDS)})")
    y.backward(dy)
    expected = {
        "output": y.detach().flatten().tolist(),
        "grad_input": x.grad.flatten().tolist(),
        "grad_gamma": gamma.grad.tolist(),
    }
    if kind not in WITHOUT_BETA:
        expected["grad_beta"] = beta.grad.tolist()
    for name, value in extra.items():
        expected[f"grad_{name}"] = value.grad.tolist()
    if state_after is not None:
        expected["state"] = state_after
    return expected


def check(paths):
    files = []
    for path in map(pathlib.Path, paths):
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise SystemExit("check: no fixture files given")
    failed = 0
    for file in files:
        try:
            case = json.loads(file.read_text())
            if case.get("format") != FORMAT:
                raise FixtureError(f"format is {case.get('format')!r}, not {FORMAT!r}")
            tolerance = case.get("tolerance", {"abs": 1e-4, "rel": 1e-4})
            try:
                ours = reference(case)
            except (ValueError, RuntimeError) as error:
                if "expect_error" in case:
                    print(f"PASS {file.name}: the reference rejects it too ({str(error).splitlines()[0]})")
                else:
                    failed += 1
                    print(f"FAIL {file.name}: the reference rejects it ({str(error).splitlines()[0]})")
                continue
            if "expect_error" in case:
                failed += 1
                print(f"FAIL {file.name}: expects an error, but the reference computes it")
                continue
            stored = case["expected"]
            # Every value the reference computes: output, input gradient, each parameter's gradient.
            pairs = [(key, stored[key], value) for key, value in ours.items() if key != "state"]
            pairs += [(f"state.{key}", stored["state"][key], value) for key, value in ours.get("state", {}).items()]
            worst, verdict = [], "PASS"
            for key, want, got in pairs:
                want, got = np.asarray(want, dtype=np.float64), np.asarray(got, dtype=np.float64)
                if want.shape != got.shape:
                    raise FixtureError(f"{key} has {want.size} values, the reference {got.size}")
                error = np.abs(got - want)
                if np.any(error > tolerance["abs"] + tolerance["rel"] * np.abs(want)):
                    verdict = "FAIL"
                worst.append(f"{key} {error.max():.1e}")
            failed += verdict == "FAIL"
            print(f"{verdict} {file.name}: largest difference {', '.join(worst)}")
        except (OSError, json.JSONDecodeError, KeyError, TypeError, FixtureError) as error:
            failed += 1
            print(f"FAIL {file.name}: not a readable {FORMAT} fixture ({type(error).__name__}: {error})")
    print(f"{len(files) - failed} agree, {failed} disagree")
    return 1 if failed else 0


def make(arguments):
    rng = np.random.default_rng(arguments.seed)
    shape = arguments.shape
    channels = shape[1]

    def floats(count, low=-2.0, high=2.0):
        # float32 values, written as float64: exactly representable, as the format asks.
        return rng.uniform(low, high, count).astype(np.float32).astype(np.float64).tolist()

    if arguments.kind == "conv_ws":
        if len(shape) != 4 or arguments.out_channels is None:
            raise SystemExit("make: conv_ws needs --shape N,C,H,W and --out-channels")
        k, stride, padding = arguments.kernel, arguments.stride, arguments.padding
        out = [shape[0], arguments.out_channels] + [(size + 2 * padding - k) // stride + 1 for size in shape[2:]]
        if min(out) < 1:
            raise SystemExit(f"make: a {k}×{k} kernel with stride {stride} and padding {padding} leaves no output of {shape}")
        weight_shape = [arguments.out_channels, channels, k, k]
        case = {"format": FORMAT, "name": arguments.name or f"conv-ws-{k}x{k}-seed{arguments.seed}",
                "conv_ws": {"in_channels": channels, "out_channels": arguments.out_channels, "kernel": k, "stride": stride,
                            "padding": padding, "eps": arguments.eps},
                "input": {"shape": shape, "data": floats(int(np.prod(shape)))},
                "weight": {"shape": weight_shape, "data": floats(int(np.prod(weight_shape)), -0.5, 0.5)},
                "grad_output": {"shape": out, "data": floats(int(np.prod(out)))}}
        case["expected"] = reference(case)
        print(json.dumps(case))
        return 0

    count = int(np.prod(shape))
    spec = {"kind": arguments.kind, "channels": channels, "eps": arguments.eps}
    case = {"format": FORMAT, "name": arguments.name or f"{arguments.kind}-{len(shape)}d-{arguments.mode}-seed{arguments.seed}"}
    if arguments.kind in ("batch", "batchrenorm", "ghostbatch"):
        spec["momentum"] = arguments.momentum
    if arguments.kind in ("group", "evonorm"):
        if arguments.groups is None:
            raise SystemExit(f"make: {arguments.kind} needs --groups")
        spec["groups"] = arguments.groups
    if arguments.kind == "ghostbatch":
        if arguments.virtual_batch_size is None:
            raise SystemExit("make: ghost batch norm needs --virtual-batch-size")
        spec["virtual_batch_size"] = arguments.virtual_batch_size
    if arguments.kind == "batchrenorm":
        if arguments.rmax is None or arguments.dmax is None:
            raise SystemExit("make: batch renorm needs --rmax and --dmax")
        spec["rmax"], spec["dmax"] = arguments.rmax, arguments.dmax
    case["normalizer"] = spec
    case["mode"] = arguments.mode
    case["input"] = {"shape": shape, "data": floats(count)}
    case["gamma"] = floats(channels, 0.5, 1.5)
    if arguments.kind not in WITHOUT_BETA:
        case["beta"] = floats(channels, -1.0, 1.0)
    if arguments.kind == "frn":
        case["tau"] = floats(channels, -0.5, 0.5)
    if arguments.kind == "evonorm":
        case["v"] = floats(channels, 0.5, 1.5)
    case["grad_output"] = floats(count)
    if arguments.kind in ("batch", "ghostbatch"):
        case["state"] = {"running_mean": floats(channels, -0.5, 0.5), "running_var": floats(channels, 0.5, 2.0)}
    elif arguments.kind == "batchrenorm":
        case["state"] = {"running_mean": floats(channels, -0.5, 0.5), "running_std": floats(channels, 0.5, 2.0)}
    try:
        case["expected"] = reference(case)
    except (ValueError, RuntimeError) as error:
        case["expect_error"] = str(error).splitlines()[0]
    print(json.dumps(case))
    return 0


def shape_argument(text):
    try:
        return [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, like 4,3,5,5; got {text!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="recompute the fixtures' expected values and compare")
    checking.add_argument("paths", nargs="+")
    making = commands.add_parser("make", help="print a new fixture")
    making.add_argument("kind", choices=KINDS + ["conv_ws"])
    making.add_argument("--shape", required=True, type=shape_argument, help="N,C or N,C,H,W")
    making.add_argument("--mode", choices=["training", "inference"], default="training")
    making.add_argument("--groups", type=int)
    making.add_argument("--eps", type=float, default=1e-5)
    making.add_argument("--momentum", type=float, default=0.1)
    making.add_argument("--rmax", type=float)
    making.add_argument("--dmax", type=float)
    making.add_argument("--virtual-batch-size", type=int)
    making.add_argument("--out-channels", type=int)
    making.add_argument("--kernel", type=int, default=3)
    making.add_argument("--stride", type=int, default=1)
    making.add_argument("--padding", type=int, default=1)
    making.add_argument("--seed", type=int, default=0)
    making.add_argument("--name")
    arguments = parser.parse_args()
    if arguments.command == "check":
        return check(arguments.paths)
    if len(arguments.shape) not in (2, 4) or min(arguments.shape) < 1:
        parser.error(f"--shape must be N,C or N,C,H,W with positive sizes, got {arguments.shape}")
    return make(arguments)


if __name__ == "__main__":
    sys.exit(main())
