"""
Writes torch_deeplab.safetensors: two small DeepLab networks built in
PyTorch (this file's own ResNet/ASPP, named as torchvision), their
state_dicts with randomised BN statistics, an input, and the outputs in eval
and training mode, plus one running_var after the training-mode pass.
tests/models/torch_parity_test.ts loads the weights with loadInto() and
checks ours reproduces PyTorch. Regenerate (torch 1.13, Debian) with

    /usr/bin/python3 tests/testdata/models/make_torch_fixture.py
"""

import json, sys, time, struct
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2)

def conv(i, o, k, s=1, d=1):
    return nn.Conv2d(i, o, k, s, padding=d * (k - 1) // 2, dilation=d, bias=False)

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

LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}

def scaled(b, m):
    return max(1, int(np.floor(b * m + 0.5)))

class ResNet(nn.Module):
    def __init__(s, depth, inp, stem, os, m):
        super().__init__()
        block = Bottleneck if depth >= 50 else Basic
        w = scaled(64, m)
        s.stem = stem
        s.conv1 = conv(inp, w, 7, 2) if stem == "imagenet" else conv(inp, w, 3, 1)
        s.bn1 = nn.BatchNorm2d(w)
        natural = 32 if stem == "imagenet" else 8
        nd = int(round(np.log2(natural / os)))
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
    def forward(s, x):
        x = F.relu(s.bn1(s.conv1(x)))
        if s.stem == "imagenet":
            x = F.max_pool2d(x, 3, 2, 1)
        return s.layer4(s.layer3(s.layer2(s.layer1(x))))

def cbr(i, o, k, d=1):
    return nn.Sequential(conv(i, o, k, 1, d), nn.BatchNorm2d(o), nn.ReLU())

class ASPP(nn.Module):
    def __init__(s, cin, ch, rates):
        super().__init__()
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(cin, ch, 1), nn.BatchNorm2d(ch), nn.ReLU())
        s.convs = nn.ModuleList([cbr(cin, ch, 1)] + [cbr(cin, ch, 3, r) for r in rates] + [pool])
        s.project = cbr(ch * (len(rates) + 2), ch, 1)
    def forward(s, f):
        outs = [b(f) for b in s.convs[:-1]] + [s.convs[-1](f).expand(-1, -1, f.shape[2], f.shape[3])]
        return s.project(torch.cat(outs, 1))

class DeepLab(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.backbone = ResNet(c["depth"], c["inChannels"], c["stem"], c["outputStride"], c.get("widthMultiplier", 1))
        ch = c["asppChannels"]
        s.classifier = nn.Sequential(ASPP(s.backbone.channels, ch, c["asppRates"]), nn.Conv2d(ch, c["nClasses"], 1))
    def forward(s, x):
        y = s.classifier(s.backbone(x))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=True)

def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    types = {"F32": np.float32, "I64": np.int64}
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=types[e["dtype"]]).reshape(e["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out

CONFIGS = {
    "r18": {"depth": 18, "inChannels": 2, "stem": "imagenet", "outputStride": 8, "widthMultiplier": 1 / 32,
            "asppChannels": 8, "asppRates": [1, 2, 4], "nClasses": 2, "size": [16, 24]},
    "r50": {"depth": 50, "inChannels": 2, "stem": "cifar", "outputStride": 4, "widthMultiplier": 1 / 64,
            "asppChannels": 4, "asppRates": [1, 3, 6], "nClasses": 3, "size": [16, 16]},
}

def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for k, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {"float32": "F32", "int64": "I64"}[str(a.dtype)]
        b = a.tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

torch.manual_seed(0)
out, meta = {}, {}
for name, c in CONFIGS.items():
    net = DeepLab(c)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5); m.bias.data.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(7)
    # Copies: state_dict() shares storage with the BN buffers, which the
    # training-mode pass below updates in place.
    for k, v in net.state_dict().items():
        out[name + "." + k] = v.clone()
    x = torch.randn(2, c["inChannels"], *c["size"])
    net.eval()
    with torch.no_grad():
        e = net(x)
        net.train()
        t = net(x)
    out["io." + name + ".x"] = x.permute(0, 2, 3, 1)
    out["io." + name + ".eval"] = e.permute(0, 2, 3, 1)
    out["io." + name + ".train"] = t.permute(0, 2, 3, 1)
    out["io." + name + ".running_var"] = net.backbone.layer4[-1].bn2.running_var
    meta[name] = json.dumps({k: v for k, v in c.items() if k != "size"})
write_safetensors(__file__.rsplit("/", 1)[0] + "/torch_deeplab.safetensors", out, meta)
