"""
Loads a run's model/ into the PyTorch reference (agcl_torch.py) with
`load_state_dict(strict=True)` and reproduces our prediction on one volume:
`probe.safetensors` (written by bench/model_dir_bench.ts) holds every
slice of the volume as our inference sees it (canonical grid, the run's
intensity mapping, padded to the network's multiple; NHWC), stage 1's
logits on them, and for each target stage 3's logits on [image, attention]
(the attention being that target in stage 1's prediction). Both networks
run in eval mode here and the largest absolute differences are printed.

    python3 bench/torch_ref/reproduce_model.py RUN/model probe.safetensors

Prints one JSON line: {"coarse": max |Δ|, "segment": max |Δ|,
"labels_agree": share of slice pixels where both argmaxes agree, "max": …}.
"""

import json, os, sys
import torch
from agcl_torch import DeepLab, ResNet, read_safetensors


def load(model_dir, net):
    """The agcl_torch network a model/config.json entry describes, its state dict loaded strictly, in eval mode."""
    o = net["options"]
    m = DeepLab(o) if net["kind"] == "deeplab" else ResNet(o["depth"], o["inChannels"], o["stem"], o["outputStride"], o["widthMultiplier"])
    m.load_state_dict(read_safetensors(os.path.join(model_dir, net["file"])), strict=True)
    return m.eval()


def main(model_dir, probe_path):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    nets = config["nets"]
    probe = read_safetensors(probe_path)
    nchw = lambda t: t.permute(0, 3, 1, 2)
    out = {}
    with torch.no_grad():
        # The encoder file loads on its own too (the segment file holds the same values under backbone.).
        encoder = load(model_dir, nets["encoder"])
        segment = load(model_dir, nets["segment"])
        for k, v in encoder.state_dict().items():
            assert torch.equal(v, segment.backbone.state_dict()[k]), k
        agree, total = 0, 0
        if nets["coarse"] is not None:
            coarse = load(model_dir, nets["coarse"])
            ours = probe["coarse_logits"]
            theirs = coarse(nchw(probe["image"])).permute(0, 2, 3, 1)
            out["coarse"] = float((theirs - ours).abs().max())
            agree += int((theirs.argmax(3) == ours.argmax(3)).sum()); total += ours[..., 0].numel()
        worst = 0.0
        for k in sorted(x for x in probe if x.startswith("segment_input.")):
            t = k.split(".", 1)[1]
            ours = probe["segment_logits." + t]
            theirs = segment(nchw(probe[k])).permute(0, 2, 3, 1)
            worst = max(worst, float((theirs - ours).abs().max()))
            agree += int((theirs.argmax(3) == ours.argmax(3)).sum()); total += ours[..., 0].numel()
        out["segment"] = worst
        out["labels_agree"] = agree / total
        out["max"] = max(out.get("coarse", 0.0), worst)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
