"""
Checks a run's model/ with numpy alone (no torch): each safetensors file is
parsed from its header (8-byte little-endian length, JSON), and its names,
shapes and dtypes must be exactly the state_dict of the agcl_torch.py
network that model/config.json describes. The expected state_dict is built
here from agcl_torch.py's construction rules (ResNet, ASPP, DeepLab, cbr),
so the check runs where torch is not installed (the test suite); with
`--torch` it is first checked against agcl_torch's real `state_dict()`.

    /usr/bin/python3 bench/torch_ref/check_model_dir.py RUN/model [--torch]

Prints one JSON line {"nets": {name: tensors}, "torch": bool}; exits 1 with
the differences on stderr.
"""

import json, os, struct, sys
import numpy as np

LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
DTYPES = {"F32": np.float32, "I64": np.int64}


def scaled(b, m):
    """agcl_torch.scaled: a width times the multiplier, rounded half up, at least 1."""
    return max(1, int(np.floor(b * m + 0.5)))


def bn(prefix, c):
    """nn.BatchNorm2d's state_dict."""
    return {prefix + "weight": ([c], "F32"), prefix + "bias": ([c], "F32"),
            prefix + "running_mean": ([c], "F32"), prefix + "running_var": ([c], "F32"),
            prefix + "num_batches_tracked": ([], "I64")}


def conv(prefix, o, i, k):
    """nn.Conv2d without bias: OIHW."""
    return {prefix + "weight": ([o, i, k, k], "F32")}


def resnet(o, p=""):
    """agcl_torch.ResNet(depth, inChannels, stem, outputStride, widthMultiplier): (state, channels, low channels)."""
    depth, m = o["depth"], o["widthMultiplier"]
    exp = 4 if depth >= 50 else 1
    w = scaled(64, m)
    sd = conv(p + "conv1.", w, o["inChannels"], 7 if o["stem"] == "imagenet" else 3)
    sd.update(bn(p + "bn1.", w))
    natural = 32 if o["stem"] == "imagenet" else 8
    nd = int(round(np.log2(natural / (o.get("outputStride") or natural))))
    inplanes = w
    for si in range(4):
        planes = scaled(64 * 2 ** si, m)
        # Dilated stages (the last nd) keep stride 1, as agcl_torch.ResNet.
        stride = 1 if si == 0 or si >= 4 - nd else 2
        for i in range(LAYERS[depth][si]):
            b = "%slayer%d.%d." % (p, si + 1, i)
            if exp == 1:
                sd.update(conv(b + "conv1.", planes, inplanes, 3)); sd.update(bn(b + "bn1.", planes))
                sd.update(conv(b + "conv2.", planes, planes, 3)); sd.update(bn(b + "bn2.", planes))
            else:
                sd.update(conv(b + "conv1.", planes, inplanes, 1)); sd.update(bn(b + "bn1.", planes))
                sd.update(conv(b + "conv2.", planes, planes, 3)); sd.update(bn(b + "bn2.", planes))
                sd.update(conv(b + "conv3.", planes * 4, planes, 1)); sd.update(bn(b + "bn3.", planes * 4))
            if i == 0 and (stride != 1 or inplanes != planes * exp):
                sd.update(conv(b + "downsample.0.", planes * exp, inplanes, 1))
                sd.update(bn(b + "downsample.1.", planes * exp))
            inplanes = planes * exp
    return sd, inplanes, w * exp


def cbr(prefix, o, i, k):
    """agcl_torch.cbr: nn.Sequential(conv, BN, ReLU)."""
    sd = conv(prefix + "0.", o, i, k)
    sd.update(bn(prefix + "1.", o))
    return sd


def deeplab(o):
    """agcl_torch.DeepLab(options)'s state_dict."""
    sd, cin, low_in = resnet(o, "backbone.")
    ch, rates = o["asppChannels"], o["asppRates"]
    a = "classifier.0."
    sd.update(cbr(a + "convs.0.", ch, cin, 1))
    for r in range(len(rates)):
        sd.update(cbr(a + "convs.%d." % (r + 1), ch, cin, 3))
    pool = a + "convs.%d." % (len(rates) + 1)
    sd.update(conv(pool + "1.", ch, cin, 1)); sd.update(bn(pool + "2.", ch))
    sd.update(cbr(a + "project.", ch, ch * (len(rates) + 2), 1))
    sd["classifier.1.weight"] = ([o["nClasses"], ch, 1, 1], "F32")
    sd["classifier.1.bias"] = ([o["nClasses"]], "F32")
    if o.get("lowLevelSkip", False):
        low = o.get("lowLevelChannels", 48)
        if o.get("lowLevelSource", "layer1") == "stem":
            low_in = scaled(64, o["widthMultiplier"])
        sd.update(cbr("decoder.low.", low, low_in, 1))
        sd.update(cbr("decoder.fuse.", ch, ch + low, 3))
    return sd


def expected(net):
    """{name: (shape, dtype)} of a model/config.json entry."""
    return deeplab(net["options"]) if net["kind"] == "deeplab" else resnet(net["options"])[0]


def read_header(path):
    """The JSON header of a safetensors file, parsed by hand (8-byte little-endian length first)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


def check(path, want):
    """Differences between a safetensors file and the expected state_dict (empty when they agree)."""
    header, data = read_header(path)
    meta = header.pop("__metadata__", {})
    bad = []
    if meta.get("format") != "pt":
        bad.append("%s: __metadata__ format is %r, expected 'pt'" % (path, meta.get("format")))
    for k in sorted(set(want) - set(header)):
        bad.append("%s: missing %s" % (path, k))
    for k in sorted(set(header) - set(want)):
        bad.append("%s: unexpected %s" % (path, k))
    for k in sorted(set(header) & set(want)):
        e = header[k]
        shape, dtype = want[k]
        if e["shape"] != shape or e["dtype"] != dtype:
            bad.append("%s: %s is %s %s, expected %s %s" % (path, k, e["dtype"], e["shape"], dtype, shape))
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype=DTYPES[dtype]).reshape(shape)
        if dtype == "F32" and not np.isfinite(a).all():
            bad.append("%s: %s holds non-finite values" % (path, k))
    return bad


def torch_state(net):
    """{name: (shape, dtype)} of agcl_torch's own network (needs torch)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import agcl_torch
    o = net["options"]
    if net["kind"] == "deeplab":
        m = agcl_torch.DeepLab(o)
    else:
        m = agcl_torch.ResNet(o["depth"], o["inChannels"], o["stem"], o["outputStride"], o["widthMultiplier"])
    return {k: (list(v.shape), "I64" if str(v.dtype) == "torch.int64" else "F32") for k, v in m.state_dict().items()}


def main(model_dir, use_torch):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    bad, out = [], {}
    for name, net in config["nets"].items():
        if net is None:
            continue
        want = expected(net)
        if use_torch:
            ref = torch_state(net)
            if ref != want:
                bad.append("%s: the naming rules here disagree with agcl_torch: %s" % (
                    name, sorted(set(ref.items()) ^ set((k, (tuple(s), d)) for k, (s, d) in want.items()))[:5]))
        bad += check(os.path.join(model_dir, net["file"]), want)
        out[name] = len(want)
    if bad:
        sys.stderr.write("\n".join(bad) + "\n")
        sys.exit(1)
    print(json.dumps({"nets": out, "torch": use_torch}))


if __name__ == "__main__":
    main(sys.argv[1], "--torch" in sys.argv[2:])
