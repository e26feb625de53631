/**
 * Segmenting new images with a trained run (the `@agcl/agcl/inference`
 * entry point: it loads neither the training stages nor the report): {@linkcode loadTrainedModel},
 * {@linkcode predictVolume} (NIfTI volumes, one per channel),
 * {@linkcode predictImage} (JPEG/PNG pixels, for runs trained on PASCAL VOC
 * folders) and {@linkcode predictFile} (file in, file out, as
 * `deno task predict`).
 *
 * @module
 */
import {
  decodeLabelPng,
  fromCanonical,
  isImagePath,
  type LabelImage,
  type LabelMap,
  type PixelImage,
  readImage,
  readNifti,
  readNiftiHeader,
  toCanonical,
  type Volume,
  type VoxelArray,
  writeLabelPng,
  writeNifti,
} from "../data/mod.ts";
import { readFileClear } from "../data/_io.ts";
import { ensureBackend } from "../backends/registry.ts";
import type { CaseImage } from "./attention.ts";
import type { PipelineConfig } from "./config.ts";
import { paddingMultiple, predictCoarse } from "./coarse.ts";
import { growLabels, keepLargestComponents } from "./attention.ts";
import { segmentVolume } from "./infer.ts";
import { normalizeIntensity } from "./prepare.ts";
import { readModelDir } from "./_model_dir.ts";
import { labelDtype, maxValue, scale8bit, toLabelMap } from "./_arrays.ts";
import type { DeepLab, Encoder } from "../models/mod.ts";

/** A trained run's networks in memory. */
export interface TrainedModel {
  /** The run's config. */
  config: PipelineConfig;
  /** Targets (label id and name), ascending. */
  targets: { id: number; name: string }[];
  /**
   * Intensity mapping the run used for single-channel volumes. Runs on
   * multi-channel images (PASCAL VOC) record `"none"` and map 8-bit values
   * `v` to `v / 255`.
   */
  intensity: "window" | "percentile" | "none";
  /** Image channels the run was trained on: 1 (CT/MRI volumes) or 3 (RGB). */
  channels: number;
  /** Targets whose stage-1 maps keep only their largest 3D component. */
  largestComponent: number[];
  /**
   * Whether stage 1 averages each slice's prediction with its left-right
   * mirror's (the run's resolved `coarse.tta`).
   */
  coarseTta: boolean;
  /** Stage-1 network, or `null` when the run used given coarse masks. */
  coarse: DeepLab | null;
  /** The frozen encoder. */
  encoder: Encoder;
  /** Stage-3 network. */
  segment: DeepLab;
  /** Frees the networks. */
  dispose(): void;
}

/**
 * Loads the final networks of a finished run from its `model/` (the
 * PyTorch state dicts and `config.json` a run writes when stage 3
 * finishes), or from a `model/` folder itself. When no backend was chosen
 * yet, selects the fastest one first (`ensureBackend`, saying which on
 * stderr), as {@linkcode predictVolume}, {@linkcode predictImage} and
 * {@linkcode predictFile} do.
 *
 * @param runDir The run directory (or its `model/` folder).
 * @returns The networks and what is needed to apply them.
 * @throws {Error} When the run has no `model/` (unfinished, or written by
 *   an earlier version) or its files are unreadable, naming the file.
 */
export async function loadTrainedModel(runDir: string): Promise<TrainedModel> {
  await ensureBackend("infer");
  const { model, coarse, encoder, segment } = await readModelDir(runDir);
  return {
    config: model.pipeline,
    targets: model.targets.map(({ id, name }) => ({ id, name }))
      .sort((a, b) => a.id - b.id),
    intensity: model.intensity,
    channels: model.channels,
    largestComponent: model.largestComponent ?? [],
    coarseTta: model.coarseTta ?? false,
    coarse,
    encoder,
    segment,
    dispose() {
      coarse?.dispose();
      segment.dispose();
      encoder.dispose();
    },
  };
}

/** The stage-1 attention of a canonical image: its own or a given coarse mask, grown. */
async function attentionOf(
  m: TrainedModel,
  c: CaseImage,
  coarse: LabelMap | undefined,
): Promise<LabelMap> {
  const maxLabel = Math.max(...m.targets.map((t) => t.id));
  let attention: LabelMap;
  if (coarse) {
    attention = coarse;
  } else if (m.coarse) {
    attention = await predictCoarse(m.coarse, c, {
      multiple: paddingMultiple(m.config),
      batchSize: m.config.coarse.batchSize,
      maxLabel,
      tta: m.coarseTta,
      context: m.config.coarse.context,
      downsample: m.config.coarse.downsample,
    });
    if (m.largestComponent.length > 0) {
      attention = keepLargestComponents(attention, c.dims, {
        labels: m.largestComponent,
      });
    }
  } else {
    throw new Error(
      "Cannot predict as the run was trained with given coarse masks: pass one (--coarse FILE)",
    );
  }
  return growLabels(attention, c.dims, { radius: m.config.coarse.dilate });
}

/** Stage 1 (or the given mask), then stage 3 and label fusion, on a canonical image. */
async function segmentCanonical(
  m: TrainedModel,
  c: CaseImage,
  coarse: LabelMap | undefined,
): Promise<LabelMap> {
  const attention = await attentionOf(m, c, coarse);
  return await segmentVolume(m.segment, c, {
    attention,
    ...m.config.inference,
    patchSize: m.config.patchSize,
    targets: m.targets.map((t) => t.id),
  });
}

/** A coarse label map as the smallest label array that holds the run's labels. */
function asAttention(m: TrainedModel, data: ArrayLike<number>): LabelMap {
  return toLabelMap(data, Math.max(...m.targets.map((t) => t.id)));
}

function runName(model: TrainedModel | string): string {
  return typeof model === "string" ? `run ${model}` : "the run";
}

/** Options for {@linkcode predictVolume}. */
export interface PredictVolumeOptions {
  /** Coarse mask (any layout of the same grid); required when the run used `--coarse`. */
  coarse?: Volume;
}

/**
 * Segments a volume with a trained run: canonical reorientation, the run's
 * intensity mapping, stage-1 attention (or the given coarse mask),
 * sliding-window stage-3 inference per target, label fusion, and the result
 * back in the input's layout.
 *
 * Runs trained on multi-channel images (PASCAL VOC, 3 channels) take one
 * volume per channel on the same grid (the volumes of a 4D NIfTI), with
 * 8-bit values mapped to `v / 255` as the training JPEGs were.
 *
 * @param model A run directory or a model from {@linkcode loadTrainedModel}.
 * @param volume The image: one volume, or one per channel for multi-channel runs.
 * @param options A coarse mask, for runs trained with given masks.
 * @returns Labels in the input's voxel layout (write them with the input's header).
 * @throws {TypeError} When the number of channels differs from the run's,
 * or the channel volumes have different grids.
 * @throws {RangeError} When a multi-channel volume has values outside 0..255.
 * @throws {Error} When a coarse mask is needed and missing or of another grid.
 */
export async function predictVolume(
  model: TrainedModel | string,
  volume: Volume | Volume[],
  options: PredictVolumeOptions = {},
): Promise<VoxelArray> {
  const planes = Array.isArray(volume) ? volume : [volume];
  if (planes.length === 0) {
    throw new TypeError(
      "Cannot predict as 'volume' is an empty list: expected one volume per channel",
    );
  }
  await ensureBackend("infer");
  const m = typeof model === "string" ? await loadTrainedModel(model) : model;
  try {
    if (planes.length !== m.channels) {
      throw new TypeError(
        `Cannot predict with ${
          runName(model)
        } as it was trained on ${m.channels}-channel images and was given ${planes.length} volume(s)${
          m.channels > 1
            ? ": pass one volume per channel (or use predictImage)"
            : ""
        }`,
      );
    }
    const first = planes[0]!;
    const canon = toCanonical(first);
    let image: Float32Array;
    if (m.channels === 1) {
      image = normalizeIntensity(canon, {
        ...m.config.intensity,
        mode: m.intensity,
      });
    } else {
      image = new Float32Array(canon.data.length * m.channels);
      planes.forEach((p, k) => {
        const cp = k === 0 ? canon : toCanonical(p);
        if (cp.dims.some((d, i) => d !== canon.dims[i])) {
          throw new TypeError(
            `Cannot predict as channel ${k} has dims [${cp.dims}] and channel 0 [${canon.dims}]`,
          );
        }
        scale8bit(cp.data, {
          source: `channel ${k}${p.path ? ` of '${p.path}'` : ""}`,
          into: image,
          offset: k,
          stride: m.channels,
        });
      });
    }
    const c = { dims: canon.dims, channels: m.channels, image };
    let coarse: LabelMap | undefined;
    if (options.coarse) {
      const cv = toCanonical(options.coarse);
      if (cv.dims.some((d, i) => d !== canon.dims[i])) {
        throw new Error(
          `Cannot predict as the coarse mask has dims [${cv.dims}] and the image [${canon.dims}]`,
        );
      }
      coarse = asAttention(m, cv.data);
    }
    const fused = await segmentCanonical(m, c, coarse);
    return fromCanonical(fused, first);
  } finally {
    if (typeof model === "string") m.dispose();
  }
}

/** Options for {@linkcode predictImage}. */
export interface PredictImageOptions {
  /** Coarse mask of the same size; required when the run used `--coarse`. */
  coarse?: LabelImage;
}

/**
 * Segments a JPEG/PNG-sized image with a run trained on multi-channel
 * images (a PASCAL VOC folder): pixels mapped to `v / 255` as in training,
 * stage-1 attention (or the given coarse mask), sliding-window stage-3
 * inference per target and label fusion, on the pixel grid (top row first).
 *
 * @example Usage
 * ```ts ignore
 * import { readImage, writeLabelPng } from "@agcl/agcl/data";
 * import { loadTrainedModel, predictImage } from "@agcl/agcl/pipeline";
 * const model = await loadTrainedModel(".runs/voc");
 * const labels = await predictImage(model, await readImage("photo.jpg"));
 * await writeLabelPng("labels.png", labels);
 * model.dispose();
 * ```
 *
 * @param model A run directory or a model from {@linkcode loadTrainedModel}.
 * @param image The image, with as many channels as the run's.
 * @param options A coarse mask, for runs trained with given masks.
 * @returns Class ids `[height, width]` (0 = background).
 * @throws {TypeError} When the run was trained on single-channel volumes,
 * or the image's channels differ from the run's.
 * @throws {RangeError} When the run has labels above 255.
 * @throws {Error} When a coarse mask is needed and missing or of another size.
 */
export async function predictImage(
  model: TrainedModel | string,
  image: PixelImage,
  options: PredictImageOptions = {},
): Promise<LabelImage> {
  const { width, height, channels } = image;
  if (image.data.length !== width * height * channels) {
    throw new TypeError(
      `Cannot predict as 'image.data' has ${image.data.length} values: expected ${width}×${height}×${channels}`,
    );
  }
  await ensureBackend("infer");
  const m = typeof model === "string" ? await loadTrainedModel(model) : model;
  try {
    if (m.channels === 1) {
      throw new TypeError(
        `Cannot predict a ${channels}-channel image with ${
          runName(model)
        } as it was trained on single-channel volumes: give a NIfTI volume (.nii or .nii.gz, predictVolume)`,
      );
    }
    if (channels !== m.channels) {
      throw new TypeError(
        `Cannot predict with ${
          runName(model)
        } as it was trained on ${m.channels}-channel images and the image has ${channels} channel(s)`,
      );
    }
    const maxLabel = Math.max(...m.targets.map((t) => t.id));
    if (maxLabel > 255) {
      throw new RangeError(
        `Cannot predict an image with ${
          runName(model)
        } as its labels go up to ${maxLabel}: an 8-bit label image holds 0..255`,
      );
    }
    const data = scale8bit(image.data);
    const c = {
      dims: [width, height, 1] as [number, number, number],
      channels,
      image: data,
    };
    let coarse: LabelMap | undefined;
    if (options.coarse) {
      const { width: w, height: h } = options.coarse;
      if (w !== width || h !== height) {
        throw new Error(
          `Cannot predict as the coarse mask is ${w}×${h} and the image ${width}×${height}`,
        );
      }
      coarse = asAttention(m, options.coarse.data);
    }
    const fused = await segmentCanonical(m, c, coarse);
    return { width, height, data: Uint8Array.from(fused) };
  } finally {
    if (typeof model === "string") m.dispose();
  }
}

/** Options for {@linkcode predictFile}. */
export interface PredictFileOptions {
  /** The output file: `.nii`, `.nii.gz`, or `.png` for image inputs. */
  out: string;
  /**
   * Coarse mask file (`.nii`/`.nii.gz`, or a label `.png` for image
   * inputs); required when the run used `--coarse`.
   */
  coarse?: string;
  /** Palette of a `.png` output (see {@linkcode encodeLabelPng}). @default {"voc"} */
  palette?: "voc" | "grey";
  /**
   * Which volume of a 4D NIfTI to segment, for single-channel runs (see
   * `readNifti`'s `volumeIndex`); multi-channel runs read every
   * volume as a channel and refuse it.
   */
  volumeIndex?: number;
  /** Receives what the reader assumed about the input (e.g. 1 mm voxels). */
  onWarning?: (message: string) => void;
}

/** What {@linkcode predictFile} wrote. */
export interface PredictFileResult {
  /** The output file. */
  out: string;
  /** `"png"` (8-bit label PNG) or `"nifti"`. */
  format: "png" | "nifti";
  /** Grid of the labels `[nx, ny, nz]` (`[width, height, 1]` for images). */
  dims: [number, number, number];
  /** The labels as written: `[nz, ny, nx]`, x fastest (`[height, width]` for images). */
  labels: VoxelArray;
}

function kindOf(path: string): "image" | "nifti" | null {
  if (isImagePath(path)) return "image";
  if (/\.nii(\.gz)?$/i.test(path)) return "nifti";
  return null;
}

/**
 * Segments one file with a trained run and writes the labels, as
 * `deno task predict`:
 *
 * - `.nii`/`.nii.gz` in: a volume for single-channel runs; for
 *   multi-channel runs a 4D NIfTI with one 8-bit volume per channel. Out:
 *   NIfTI with the input's header and affine (uint8, int16 past 255).
 * - `.jpg`/`.jpeg`/`.png` in (multi-channel runs only, decoded as
 *   {@linkcode readImage}): out a `.png` 8-bit label map the size of the
 *   input (indexed, VOC palette), or a 2D `.nii`/`.nii.gz` on the pixel
 *   grid (identity affine, as the run's own `predictions/`).
 *
 * Extensions are checked before anything is read; the output is written
 * atomically, and not at all when any step fails.
 *
 * @param model A run directory or a model from {@linkcode loadTrainedModel}.
 * @param imagePath The input file.
 * @param options The output file, coarse mask file, PNG palette.
 * @returns What was written.
 * @throws {TypeError} For an unknown extension, a NIfTI-to-PNG request,
 * or channels that differ from the run's.
 * @throws {Error} Naming the file when it is missing or unreadable.
 */
export async function predictFile(
  model: TrainedModel | string,
  imagePath: string,
  options: PredictFileOptions,
): Promise<PredictFileResult> {
  const outPath = options.out;
  const inKind = kindOf(imagePath);
  const outKind = kindOf(outPath);
  if (inKind === null) {
    throw new TypeError(
      `Cannot predict '${imagePath}' as its extension is not one of .nii, .nii.gz, .jpg, .jpeg, .png`,
    );
  }
  if (outKind === null || (outKind === "image" && !/\.png$/i.test(outPath))) {
    throw new TypeError(
      `Cannot write predictions to '${outPath}' as its extension is not one of .nii, .nii.gz, .png`,
    );
  }
  if (inKind === "nifti" && outKind === "image") {
    throw new TypeError(
      `Cannot write predictions for NIfTI '${imagePath}' to PNG '${outPath}': write .nii or .nii.gz (PNG output is for JPEG/PNG inputs)`,
    );
  }
  const m = typeof model === "string" ? await loadTrainedModel(model) : model;
  try {
    if (inKind === "image") {
      if (m.channels === 1) {
        throw new TypeError(
          `Cannot predict '${imagePath}' with ${
            runName(model)
          } as it was trained on single-channel volumes: give a NIfTI volume (.nii or .nii.gz)`,
        );
      }
      const image = await readImage(imagePath);
      if (image.channels !== m.channels) {
        throw new TypeError(
          `Cannot predict '${imagePath}' with ${
            runName(model)
          } as it was trained on ${m.channels}-channel images and the file has ${image.channels} channel(s)`,
        );
      }
      const opts: PredictImageOptions = {};
      if (options.coarse) {
        opts.coarse = await readCoarseImage(options.coarse);
      }
      const labels = await predictImage(m, image, opts);
      const dims: [number, number, number] = [labels.width, labels.height, 1];
      if (outKind === "image") {
        await writeLabelPng(
          outPath,
          labels,
          options.palette ? { palette: options.palette } : {},
        );
        return { out: outPath, format: "png", dims, labels: labels.data };
      }
      await writeNifti(outPath, {
        data: labels.data,
        dims,
        spacing: [1, 1, 1],
        affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
      });
      return { out: outPath, format: "nifti", dims, labels: labels.data };
    }
    let planes: Volume[];
    if (m.channels === 1) {
      const { volumeIndex } = options;
      planes = [
        await readNifti(
          imagePath,
          volumeIndex === undefined ? {} : { volumeIndex },
        ),
      ];
    } else if (options.volumeIndex !== undefined) {
      throw new TypeError(
        `Cannot predict NIfTI file '${imagePath}' with ${
          runName(model)
        } and 'volumeIndex' ${options.volumeIndex} as it was trained on ${m.channels}-channel images, which read every volume as a channel`,
      );
    } else {
      const info = await readNiftiHeader(imagePath);
      if (info.volumes !== m.channels) {
        throw new TypeError(
          `Cannot predict NIfTI file '${imagePath}' with ${
            runName(model)
          } as it was trained on ${m.channels}-channel images: expected a 4D NIfTI with ${m.channels} volumes (one per channel, 8-bit), found ${info.volumes} volume(s) of [${info.dims}]`,
        );
      }
      planes = [];
      for (let k = 0; k < m.channels; k++) {
        planes.push(await readNifti(imagePath, { volumeIndex: k }));
      }
    }
    for (const note of planes[0]!.assumed ?? []) {
      options.onWarning?.(`${imagePath}: ${note}`);
    }
    const vopts: PredictVolumeOptions = {};
    if (options.coarse) vopts.coarse = await readNifti(options.coarse);
    const labels = await predictVolume(
      m,
      m.channels === 1 ? planes[0]! : planes,
      vopts,
    );
    const first = planes[0]!;
    // A 4D input's header keeps its intent (e.g. vector); labels are plain.
    const header = m.channels === 1 || first.header === undefined
      ? first.header
      : { ...first.header as object, intentCode: 0, intentName: "" };
    await writeNifti(outPath, { ...first, header, data: labels }, {
      datatype: labelDtype(maxValue(labels)),
    });
    return { out: outPath, format: "nifti", dims: first.dims, labels };
  } finally {
    if (typeof model === "string") m.dispose();
  }
}

/** A coarse mask for an image input: a label PNG, or a NIfTI on the pixel grid. */
async function readCoarseImage(path: string): Promise<LabelImage> {
  if (/\.png$/i.test(path)) {
    return decodeLabelPng(
      await readFileClear(path, "coarse mask"),
      `coarse mask '${path}'`,
    );
  }
  const v = toCanonical(await readNifti(path));
  if (v.dims[2] !== 1) {
    throw new TypeError(
      `Cannot use coarse mask '${path}' for an image: expected a 2D NIfTI, found dims [${v.dims}]`,
    );
  }
  const data = new Uint8Array(v.data.length);
  for (let i = 0; i < data.length; i++) {
    const x = v.data[i]!;
    if (!(Number.isInteger(x) && x >= 0 && x <= 255)) {
      throw new RangeError(
        `Cannot use coarse mask '${path}': voxel ${i} is ${x}, expected a label 0..255`,
      );
    }
    data[i] = x;
  }
  return { width: v.dims[0], height: v.dims[1], data };
}
