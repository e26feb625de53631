"""
The PyTorch reference of AGCL's networks and loss, written once for every
comparison with PyTorch: the benches (bench/models_bench.ts,
bench/step_bench.ts, bench/losses_bench.ts) and the checkpoint fixture
(tests/testdata/models/make_torch_fixture.py).

- `DeepLab(config)`: the network of models/deeplab.ts, without torchvision,
  under torchvision's names, so a checkpoint of ours loads with
  `load_state_dict(strict=True)`. `config` takes the keys (and defaults) of
  our `DeepLabOptions`: a ResNet encoder (`depth` 18/34/50/101, `inChannels`,
  `stem` "imagenet" or "cifar", `outputStride` by dilating the last stages,
  `widthMultiplier`), the paper's ASPP head (`asppRates`, `asppChannels`,
  image pooling), `nClasses`, the optional DeepLabv3+ low-level skip
  (`lowLevelSkip`, `lowLevelSource`, `lowLevelChannels`) and `alignCorners`.
- `ProjectionHead`: Linear, ReLU, Linear, then L2 normalisation, named as
  SupContrast's `head`, as models/heads.ts.
- `sup_con_loss`: SupCon (Khosla et al.) as losses/sup_con.ts.
- `read_safetensors` / `write_safetensors`, `median_ms`, and
  `bench_steps`, the four modes the benches time (on the CPU, or on CUDA
  for bench/device/).

Import it with this folder on `sys.path` (bench/_common.ts `runPython` puts
it there). Tensors are NCHW here; ours are NHWC. Like every reference run on
this 2-core machine it uses 2 threads.
"""

import json, struct, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

torch.set_num_threads(2)

# Blocks per stage (torchvision's counts).
LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}


def conv(i, o, k, s=1, d=1):
    """k×k convolution without bias, PyTorch's 'same' padding for stride 1."""
    return nn.Conv2d(i, o, k, s, padding=d * (k - 1) // 2, dilation=d, bias=False)


def cbr(i, o, k, d=1):
    """conv → BN → ReLU, as `nn.Sequential` (names `0.weight`, `1.running_mean`)."""
    return nn.Sequential(conv(i, o, k, 1, d), nn.BatchNorm2d(o), nn.ReLU())


class Basic(nn.Module):
    expansion = 1

    def __init__(s, inp, planes, stride, d, down):
        super().__init__()
        s.conv1 = conv(inp, planes, 3, stride, d); s.bn1 = nn.BatchNorm2d(planes)
        s.conv2 = conv(planes, planes, 3, 1, d); s.bn2 = nn.BatchNorm2d(planes)
        s.downsample = down

    def forward(s, x):
        y = s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x)))))
        return F.relu(y + (s.downsample(x) if s.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(s, inp, planes, stride, d, down):
        super().__init__()
        s.conv1 = conv(inp, planes, 1); s.bn1 = nn.BatchNorm2d(planes)
        s.conv2 = conv(planes, planes, 3, stride, d); s.bn2 = nn.BatchNorm2d(planes)
        s.conv3 = conv(planes, planes * 4, 1); s.bn3 = nn.BatchNorm2d(planes * 4)
        s.downsample = down

    def forward(s, x):
        y = F.relu(s.bn1(s.conv1(x)))
        y = F.relu(s.bn2(s.conv2(y)))
        y = s.bn3(s.conv3(y))
        return F.relu(y + (s.downsample(x) if s.downsample is not None else x))


def scaled(b, m):
    """A width times the multiplier, rounded half up, at least 1 (models/resnet.ts)."""
    return max(1, int(np.floor(b * m + 0.5)))


class ResNet(nn.Module):
    """
    The encoder of models/resnet.ts. The "imagenet" stem is 7×7 stride 2 and
    a 3×3 stride-2 max-pool (natural stride 32), "cifar" a 3×3 stride-1
    conv (natural stride 8); an output stride of natural/2 or natural/4
    dilates the last one or two stages instead of striding them, the first
    block of a dilated stage keeping the previous dilation (torchvision's
    `replace_stride_with_dilation`).
    """

    def __init__(s, depth=50, inp=3, stem="imagenet", os=None, m=1):
        super().__init__()
        block = Bottleneck if depth >= 50 else Basic
        w = scaled(64, m)
        s.stem = stem
        s.conv1 = conv(inp, w, 7, 2) if stem == "imagenet" else conv(inp, w, 3, 1)
        s.bn1 = nn.BatchNorm2d(w)
        natural = 32 if stem == "imagenet" else 8
        nd = int(round(np.log2(natural / (os or natural))))
        inplanes, dil = w, 1
        for si in range(4):
            planes = scaled(64 * 2 ** si, m)
            stride = 1 if si == 0 else 2
            prev = dil
            if si > 0 and si >= 4 - nd:
                dil *= stride; stride = 1
            blocks = []
            for i in range(LAYERS[depth][si]):
                st = stride if i == 0 else 1
                d = prev if i == 0 else dil
                down = None
                if i == 0 and (st != 1 or inplanes != planes * block.expansion):
                    down = nn.Sequential(conv(inplanes, planes * block.expansion, 1, st), nn.BatchNorm2d(planes * block.expansion))
                blocks.append(block(inplanes, planes, st, d, down))
                inplanes = planes * block.expansion
            setattr(s, "layer%d" % (si + 1), nn.Sequential(*blocks))
        s.channels = inplanes
        s.low_channels = w * block.expansion
        s.stem_channels = w

    def forward(s, x, low_level=False):
        """
        x [B, C, H, W] → features [B, channels, H/os, W/os], and with
        `low_level` True or "layer1" layer1's output, with "stem" the stem's.
        """
        x = F.relu(s.bn1(s.conv1(x)))
        if s.stem == "imagenet":
            x = F.max_pool2d(x, 3, 2, 1)
        stem = x
        low = s.layer1(x)
        f = s.layer4(s.layer3(s.layer2(low)))
        if not low_level:
            return f
        return (f, stem) if low_level == "stem" else (f, low)


class ASPP(nn.Module):
    """1×1, 3×3 at each rate, image pooling; concatenated; 1×1 projection. All conv/BN/ReLU."""

    def __init__(s, cin, ch, rates):
        super().__init__()
        # Built before the other branches: the order the fixture's weights were drawn in.
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(cin, ch, 1), nn.BatchNorm2d(ch), nn.ReLU())
        s.convs = nn.ModuleList([cbr(cin, ch, 1)] + [cbr(cin, ch, 3, r) for r in rates] + [pool])
        s.project = cbr(ch * (len(rates) + 2), ch, 1)

    def forward(s, f):
        outs = [b(f) for b in s.convs[:-1]] + [s.convs[-1](f).expand(-1, -1, f.shape[2], f.shape[3])]
        return s.project(torch.cat(outs, 1))


class DeepLab(nn.Module):
    """
    models/deeplab.ts: `backbone.*` (the ResNet), `classifier.0.*` (ASPP),
    `classifier.1.{weight,bias}` (1×1 to the classes), with the low-level
    skip `decoder.low.{0,1}.*` (1×1 on layer1's output) and
    `decoder.fuse.{0,1}.*` (3×3 on the ASPP output, upsampled to layer1's
    size, concatenated with it); logits upsampled bilinearly to the input.
    """

    def __init__(s, c):
        super().__init__()
        s.backbone = ResNet(c.get("depth", 50), c.get("inChannels", 3), c.get("stem", "imagenet"),
                            c.get("outputStride"), c.get("widthMultiplier", 1))
        ch = c.get("asppChannels", 512)
        s.classifier = nn.Sequential(ASPP(s.backbone.channels, ch, c.get("asppRates", [6, 12, 18])),
                                     nn.Conv2d(ch, c.get("nClasses", 2), 1))
        s.skip = c.get("lowLevelSkip", False) and c.get("lowLevelSource", "layer1")
        if s.skip:
            low = c.get("lowLevelChannels", 48)
            low_in = s.backbone.stem_channels if s.skip == "stem" else s.backbone.low_channels
            s.decoder = nn.ModuleDict({"low": cbr(low_in, low, 1), "fuse": cbr(ch + low, ch, 3)})
        s.align_corners = c.get("alignCorners", True)

    def decoder_parameters(s):
        """Everything but the encoder (our `decoderVariables()`)."""
        return [p for n, p in s.named_parameters() if not n.startswith("backbone.")]

    def forward(s, x, freeze_encoder=False):
        """
        x [B, C, H, W] → logits [B, nClasses, H, W]. `freeze_encoder` runs the
        encoder in eval mode without gradients (stage 3), the decoder as set.
        """
        if freeze_encoder:
            mode = s.backbone.training
            s.backbone.eval()
            with torch.no_grad():
                enc = s.backbone(x, s.skip)
            s.backbone.train(mode)
        else:
            enc = s.backbone(x, s.skip)
        f, low = enc if s.skip else (enc, None)
        y = s.classifier[0](f)
        if s.skip:
            low = s.decoder["low"](low)
            y = F.interpolate(y, size=low.shape[2:], mode="bilinear", align_corners=s.align_corners)
            y = s.decoder["fuse"](torch.cat([y, low], 1))
        y = s.classifier[1](y)
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=s.align_corners)


class ProjectionHead(nn.Module):
    """models/heads.ts `createProjectionHead`: [B, cin] → unit rows [B, out] (`head.0`, `head.2`)."""

    def __init__(s, cin, out=256, hidden=None):
        super().__init__()
        s.head = nn.Sequential(nn.Linear(cin, hidden or cin), nn.ReLU(), nn.Linear(hidden or cin, out))

    def forward(s, x):
        return F.normalize(s.head(x), dim=1)


def sup_con_loss(features, labels, temperature=0.1, base_temperature=None):
    """
    SupCon "L_out" as losses/sup_con.ts: `features` [batch, views, dim]
    (L2-normalised here), `labels` [batch]; views stacked view-major, each
    view an anchor whose positives are the other views of its class,
    self-contrast left out of numerator and denominator, anchors without a
    positive left out of the mean, scaled by temperature / base_temperature.
    """
    b, v, d = features.shape
    n = b * v
    z = F.normalize(torch.cat(torch.unbind(features, 1), 0), dim=1)  # [n, d]
    self_ = torch.eye(n, dtype=torch.bool, device=features.device)
    logits = z @ z.T / temperature  # [n, n]
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_, float("-inf")), 1, keepdim=True)
    lab = labels.repeat(v)
    pos = ((lab[:, None] == lab[None, :]) & ~self_).float()  # [n, n]
    count = pos.sum(1)
    has = (count > 0).float()
    per_anchor = -(pos * log_prob).sum(1) / count.clamp(min=1)
    loss = (per_anchor * has).sum() / has.sum().clamp(min=1)
    return loss * (temperature / (base_temperature or temperature))


SAFETENSORS_DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    """{name: tensor} of a safetensors file (F32 and I64), metadata skipped."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=SAFETENSORS_DTYPES[e["dtype"]]).reshape(e["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out


def write_safetensors(path, tensors, metadata):
    """Writes {name: tensor} (float32, int64) and a {str: str} metadata, header padded to 8 bytes."""
    names = {np.dtype(t).name: k for k, t in SAFETENSORS_DTYPES.items()}
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for k, t in tensors.items():
        a = t.detach().contiguous().numpy()
        b = a.tobytes()
        header[k] = {"dtype": names[str(a.dtype)], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)


def median_ms(f, reps, warmup=1):
    """Median wall time of `f()` in ms over `reps` runs after `warmup` runs (bench/_common.ts `timeMs`)."""
    for _ in range(warmup):
        f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t.append((time.perf_counter() - t0) * 1e3)
    return sorted(t)[len(t) // 2]


def bench_steps(net, head, optimizers, batch=4, size=128, temperature=0.1, device="cpu"):
    """
    The four modes the benches time, as callables, on random inputs with
    `net.backbone`'s input channels: inference (eval, no gradients), a full
    step (cross-entropy), a frozen-encoder step (stage 3) and a contrastive
    step (`batch` samples × 2 views through the encoder and `head`, SupCon).
    `optimizers`: (full, frozen-encoder, contrastive), each over the
    parameters its mode trains (the same one three times is fine).
    `device`: where the inputs live ("cpu", "cuda"; `net` and `head` must
    already be there). On CUDA each call waits for the GPU to finish, as
    ours waits to read its result back, so `median_ms` times whole steps.
    """
    full, frozen, con = optimizers
    c = net.backbone.conv1.in_channels
    x = torch.randn(batch, c, size, size, device=device)
    x2 = torch.randn(2 * batch, c, size, size, device=device)  # view-major: sample i's views at i and batch + i
    y = torch.randint(0, 2, (batch, size, size), device=device)
    labels = torch.arange(batch, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def inference():
        net.eval()
        with torch.no_grad():
            net(x)
        sync()

    def full_step():
        net.train(); full.zero_grad()
        F.cross_entropy(net(x), y).backward(); full.step(); sync()

    def frozen_step():
        net.train(); frozen.zero_grad()
        F.cross_entropy(net(x, freeze_encoder=True), y).backward(); frozen.step(); sync()

    def contrastive_step():
        net.backbone.train(); con.zero_grad()
        z = head(net.backbone(x2).mean((2, 3)))  # [2 batch, out]
        sup_con_loss(z.view(2, batch, -1).transpose(0, 1), labels, temperature).backward(); con.step(); sync()

    return {"inference": inference, "full step": full_step,
            "frozen-encoder step": frozen_step, "contrastive step": contrastive_step}
