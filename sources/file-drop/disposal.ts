import { copyFile, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

/**
 * Moves a finished file (and its marker) out of the drop folder, idempotently:
 * a file that is already gone is fine. With `errorText`, FILE.error.txt is
 * written beside its new place first, so a crash between the two steps never
 * leaves a moved file without its reason.
 */
export async function moveOut(opts: { from: string; name: string; toDir: string; hash: string; marker?: string; errorText?: string }): Promise<string | undefined> {
  const source = join(opts.from, opts.name);
  if (!(await exists(source))) return undefined;
  await mkdir(opts.toDir, { recursive: true });
  const target = await freeName(opts.toDir, opts.name, opts.hash);
  if (opts.errorText !== undefined) await writeFile(`${target}.error.txt`, opts.errorText, 'utf8');
  // Marker first: a file left without its marker is not complete, so never re-read half-moved.
  if (opts.marker !== undefined && (await exists(source + opts.marker))) await move(source + opts.marker, target + opts.marker);
  await move(source, target);
  return target;
}

/** Removes a marker file, if there is one. */
export async function removeMarker(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** `dir/name`, or `dir/stem.HASH12.ext` when a different file of that name is already there. */
async function freeName(dir: string, name: string, hash: string): Promise<string> {
  const plain = join(dir, name);
  if (!(await exists(plain))) return plain;
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  return join(dir, `${stem}.${(hash || String(Date.now())).slice(0, 12)}${ext}`);
}

async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    // Archive on another file system: copy, then remove.
    await copyFile(from, to);
    await unlink(from);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
