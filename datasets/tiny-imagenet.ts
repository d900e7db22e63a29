import * as fs from 'fs';
import * as path from 'path';
import { DatasetFormatError } from './errors';
import { FolderHelp, notFound, requireFiles, resolveFolder } from './files';
import { decodeInto, nativeJpegDecoder } from './jpeg';
import { CommonDatasetOptions, optionsValidator } from './options';
import { ExampleSource, LoadedDataset, sourceDataset, splitIndices } from './pipeline';

/** Options of {@link loadTinyImageNet}. */
export interface TinyImageNetOptions extends CommonDatasetOptions {
  /**
   * Folder of Tiny ImageNet as its archive extracts (`tiny-imagenet-200/`, or its parent):
   * `wnids.txt`, `train/<wnid>/images/*.JPEG`, `val/val_annotations.txt`, `val/images/*.JPEG`,
   * and optionally `words.txt` for class names. Required.
   */
  dir: string;
}

const SIDE = 64;

const HELP: FolderHelp = {
  dataset: 'Tiny ImageNet',
  option: 'dir',
  layout: [
    '  wnids.txt                    (one class id per line, e.g. n01443537)',
    '  words.txt                    (optional: "<wnid><TAB><name>" lines, for class names)',
    '  train/<wnid>/images/*.JPEG   (training images, 64×64)',
    '  val/val_annotations.txt      ("<file><TAB><wnid><TAB>…" lines)',
    '  val/images/*.JPEG            (the labelled validation images, our test split)',
  ].join('\n'),
  source:
    'http://cs231n.stanford.edu/tiny-imagenet-200.zip (`unzip tiny-imagenet-200.zip` extracts tiny-imagenet-200/)',
};

const validate = optionsValidator('loadTinyImageNet', { dir: { type: 'string', minLength: 1 } }, [
  'dir',
]);

interface Entry {
  file: string;
  label: number;
}

function readLines(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim());
}

function readWnids(folder: string): string[] {
  const file = path.join(folder, 'wnids.txt');
  const wnids = readLines(file).filter((l) => l.length > 0);
  if (wnids.length === 0) throw new DatasetFormatError(file, 'lists no class ids');
  const seen = new Set<string>();
  for (const w of wnids) {
    if (seen.has(w)) throw new DatasetFormatError(file, `lists class '${w}' twice`);
    seen.add(w);
  }
  return wnids;
}

/** Class names from `words.txt` when present, else the wnids themselves. */
function readClassNames(folder: string, wnids: string[]): string[] {
  const file = path.join(folder, 'words.txt');
  if (!fs.existsSync(file)) return wnids;
  const words = new Map<string, string>();
  for (const line of readLines(file)) {
    const tab = line.indexOf('\t');
    if (tab > 0) words.set(line.slice(0, tab), line.slice(tab + 1).trim());
  }
  return wnids.map((w) => words.get(w) ?? w);
}

const isJpeg = (name: string) => /\.jpe?g$/i.test(name);

function listTrain(folder: string, wnids: string[]): Entry[] {
  const entries: Entry[] = [];
  wnids.forEach((wnid, label) => {
    const dir = path.join(folder, 'train', wnid, 'images');
    if (!fs.existsSync(dir)) {
      throw notFound(
        HELP,
        folder,
        [dir],
        `class '${wnid}' of wnids.txt has no folder train/${wnid}/images`,
      );
    }
    const files = fs.readdirSync(dir).filter(isJpeg).sort();
    if (files.length === 0)
      throw new DatasetFormatError(dir, `holds no .JPEG images for class '${wnid}'`);
    for (const f of files) entries.push({ file: path.join(dir, f), label });
  });
  return entries;
}

function listVal(folder: string, wnids: string[]): Entry[] {
  const annotations = path.join(folder, 'val', 'val_annotations.txt');
  const labelOf = new Map(wnids.map((w, i) => [w, i]));
  const entries: Entry[] = [];
  readLines(annotations).forEach((line, n) => {
    if (line.length === 0) return;
    const [name, wnid] = line.split(/\s+/);
    if (wnid === undefined) {
      throw new DatasetFormatError(annotations, `line ${n + 1} has no class id: '${line}'`);
    }
    const label = labelOf.get(wnid);
    if (label === undefined) {
      throw new DatasetFormatError(
        annotations,
        `line ${n + 1}: class '${wnid}' is not one of the ${wnids.length} classes of wnids.txt`,
      );
    }
    const file = path.join(folder, 'val', 'images', name);
    if (!fs.existsSync(file)) {
      throw new DatasetFormatError(
        annotations,
        `line ${n + 1} names ${file}, which does not exist`,
      );
    }
    entries.push({ file, label });
  });
  if (entries.length === 0) throw new DatasetFormatError(annotations, 'lists no images');
  return entries;
}

/**
 * Tiny ImageNet as a tfjs-data dataset, streamed from its folder layout: only the file list is
 * held in memory, each image is read and decoded (by TensorFlow's native JPEG decoder, so the
 * `tensorflow` backend must be active) when the dataset reaches it. Images are 64×64×3 (grey
 * JPEGs are expanded to RGB), scaled to [−1, 1] as CIFAR-10 (docs/method.md §8 gives no statistics
 * for Tiny ImageNet; this is our choice); labels one-hot over the classes of `wnids.txt`
 * (200). Splits: `train` (`train/`, 100,000 images), `validation` (a seeded part of them, see
 * `validationFraction`), `test` (the labelled `val/` images, 10,000; the official test images
 * have no public labels). An undecodable image or one of another size is a
 * {@link DatasetFormatError} naming the file, raised when the dataset reaches it; a class of
 * `val_annotations.txt` missing from `wnids.txt` is one at load time.
 */
export async function loadTinyImageNet(options: TinyImageNetOptions): Promise<LoadedDataset> {
  const resolved = validate(options);
  const decode = nativeJpegDecoder('loadTinyImageNet');
  const folder = resolveFolder(options.dir, ['wnids.txt'], ['tiny-imagenet-200'], HELP);
  const part = resolved.split === 'test' ? 'test' : 'train';
  requireFiles(
    folder,
    part === 'train' ? ['wnids.txt', 'train'] : ['wnids.txt', 'val/val_annotations.txt'],
    HELP,
  );
  const wnids = readWnids(folder);
  const entries = part === 'train' ? listTrain(folder, wnids) : listVal(folder, wnids);
  const source: ExampleSource = {
    count: entries.length,
    shape: [SIDE, SIDE, 3],
    label: (i) => entries[i].label,
    async read(i, target, offset) {
      const file = entries[i].file;
      const bytes = await fs.promises.readFile(file);
      decodeInto(decode, file, bytes, [SIDE, SIDE], target, offset);
    },
  };
  const indices = splitIndices('loadTinyImageNet', source.count, resolved);
  const normalization = resolved.normalize ? { mean: 0.5, std: 0.5 } : { mean: 0, std: 1 };
  return {
    dataset: sourceDataset(source, indices, wnids.length, resolved, normalization),
    name: 'tiny-imagenet',
    split: resolved.split,
    size: indices.length,
    classes: wnids.length,
    classNames: readClassNames(folder, wnids),
    inputShape: source.shape,
    source: folder,
    normalization,
  };
}
