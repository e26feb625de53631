"""Held-out cases for ../shared/data/Task101_BrainAAL8: the subject's right hemispheres.

Task101 ships the left hemisphere of one subject (Colin27) in two acquisitions
(`ch2`, `ch2better`) and no test cases. This script builds the right hemispheres
from the same Debian templates (`apt-get install mricron-data`) with the recipe
the shipped cases were made by, checked here bit for bit against them before
anything is written:

- `ch2` (1 mm): the mean of each 2x2x2 block, rounded;
- `ch2better` (0.5 mm): a 4-voxel box filter, then the nearest voxel to each
  2 mm voxel's centre;
- labels: the 116 AAL regions merged into the 8 groups of the shipped labels
  (each region takes the group it falls in on the left; a right region takes
  its left twin's), then the most frequent group of each 2x2x2 block.

The right hemispheres are mirrored in array space (index 0 is the most lateral
column, as on the left) with an LAS affine, so world coordinates stay true. It
writes `imagesVal/`, `labelsVal/` and a `dataset.json` whose `training` is the
two shipped cases and whose `validation` is the two new ones, and prints the
Dice of simply copying the left atlas onto the right (0.849).

Usage: python3 tools/task101_heldout.py [TASK101_DIR] [OUT_DIR]
       (defaults: ../shared/data/Task101_BrainAAL8, /tmp/brainval)
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

TEMPLATES = "/usr/share/mricron/templates/"
GROUPS = 9  # background + 8 region groups


def blocks(a, x0):
    """The 45x108x90 blocks of 2x2x2 voxels of a 1 mm MNI volume from column x0."""
    return (a[x0:x0 + 90, 0:216, 0:180]
            .reshape(45, 2, 108, 2, 90, 2)
            .transpose(0, 2, 4, 1, 3, 5)
            .reshape(45, 108, 90, 8))


def mode(m):
    """Most frequent group of each block (ties to the lower group)."""
    out = np.zeros(m.shape[:3], int)
    best = np.full(m.shape[:3], -1)
    for v in range(GROUPS):
        count = (m == v).sum(-1)
        better = count > best
        out[better] = v
        best[better] = count[better]
    return out


def fail(msg):
    sys.exit(f"error: {msg}")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/Task101_BrainAAL8"
    out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/brainval"
    src = os.path.abspath(src)
    out = os.path.abspath(out)
    if not os.path.isdir(TEMPLATES):
        fail(f"{TEMPLATES} not found: install Debian's mricron-data")
    tr_img = nib.load(f"{src}/imagesTr/brain_001.nii.gz")
    tr_img2 = nib.load(f"{src}/imagesTr/brain_002.nii.gz").get_fdata()
    tr_lab = nib.load(f"{src}/labelsTr/brain_001.nii.gz").get_fdata().astype(int)
    ch2 = nib.load(TEMPLATES + "ch2.nii.gz").get_fdata()
    aal = nib.load(TEMPLATES + "aal.nii.gz").get_fdata().astype(int)
    better = nib.load(TEMPLATES + "ch2better.nii.gz")
    better_f = ndimage.uniform_filter(better.get_fdata(), size=4, origin=0, mode="constant")

    names = {}
    with open(TEMPLATES + "aal.nii.txt") as f:
        for line in f:
            p = line.split()
            if len(p) >= 3:
                names[int(p[0])] = p[1]
    index = {n: k for k, n in names.items()}

    # Each left region's group, read off the shipped labels.
    left = blocks(aal, 1)
    group = {0: 0}
    for r in np.unique(left):
        if r == 0:
            continue
        counts = np.bincount(tr_lab[(left == r).any(-1)], minlength=GROUPS)
        counts[0] = 0
        group[int(r)] = int(counts.argmax()) if counts.any() else 0
    lut = np.zeros(256, int)
    for k, v in group.items():
        lut[k] = v

    # The recipe must give the shipped left hemispheres exactly.
    def sample(shape, affine):
        """ch2better's filtered value nearest each voxel of a 2 mm grid."""
        m = np.linalg.inv(better.affine) @ affine
        return np.round(ndimage.affine_transform(better_f, m[:3, :3], m[:3, 3], output_shape=shape,
                                                 order=0, mode="constant", cval=0))

    checks = {
        "labels": (mode(lut[left]) != tr_lab).sum(),
        "ch2": (np.round(blocks(ch2, 1).mean(-1)) != tr_img.get_fdata()).sum(),
        "ch2better": (sample(tr_lab.shape, tr_img.affine) != tr_img2).sum(),
    }
    for what, wrong in checks.items():
        if wrong:
            fail(f"the recipe does not rebuild the shipped left {what}: {wrong} voxels differ")

    for k, n in names.items():
        if n.endswith("_R") and index.get(n[:-2] + "_L") in group:
            lut[k] = group[index[n[:-2] + "_L"]]
    right_lab = mode(lut[blocks(aal, 91)])[::-1]
    right_ch2 = np.round(blocks(ch2, 91).mean(-1))[::-1]
    affine = tr_img.affine.copy()
    affine[0, 0] = -2.0
    affine[0, 3] = 89.5  # world x of index 0, the most lateral right column
    right_better = sample(right_lab.shape, affine)

    os.makedirs(f"{out}/imagesVal", exist_ok=True)
    os.makedirs(f"{out}/labelsVal", exist_ok=True)
    header = tr_img.header.copy()
    validation = []
    for name, img, domain in [("brain_r01", right_ch2, "ch2"), ("brain_r02", right_better, "ch2better")]:
        nib.save(nib.Nifti1Image(img.astype(np.uint8), affine, header), f"{out}/imagesVal/{name}.nii.gz")
        nib.save(nib.Nifti1Image(right_lab.astype(np.uint8), affine, header), f"{out}/labelsVal/{name}.nii.gz")
        validation.append({"image": f"{out}/imagesVal/{name}.nii.gz",
                           "label": f"{out}/labelsVal/{name}.nii.gz", "domain": domain})
    with open(f"{src}/dataset.json") as f:
        ds = json.load(f)
    ds["training"] = [{"image": f"{src}/{e['image'][2:]}", "label": f"{src}/{e['label'][2:]}",
                       "domain": e["domain"]} for e in ds["training"]]
    ds["validation"] = validation
    with open(f"{out}/dataset.json", "w") as f:
        json.dump(ds, f, indent=1)

    dice = [2 * ((tr_lab == k) & (right_lab == k)).sum() / ((tr_lab == k).sum() + (right_lab == k).sum())
            for k in range(1, GROUPS)]
    print(f"wrote {out}/dataset.json; copying the left atlas onto the right: mean Dice {np.mean(dice):.3f}")


if __name__ == "__main__":
    main()
