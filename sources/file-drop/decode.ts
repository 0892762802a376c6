import { createReadStream } from 'node:fs';
import { pipeline, type Readable, type Transform } from 'node:stream';
import iconv from 'iconv-lite';

/**
 * A file as a stream of decoded text: bytes are decoded with iconv-lite
 * BEFORE any parsing (Windows-1252 is not latin1: 0x80 is `€`), in chunks,
 * so memory stays bounded. Read errors surface on the returned stream.
 */
export function openDecoded(file: string, encoding: string, stripBom: boolean): Readable {
  const decoder = iconv.decodeStream(encoding, { stripBOM: stripBom }) as unknown as Transform;
  pipeline(createReadStream(file, { highWaterMark: 256 << 10 }), decoder, () => undefined);
  return decoder;
}

/** Whether iconv-lite knows the encoding name. */
export function knownEncoding(encoding: string): boolean {
  return iconv.encodingExists(encoding);
}
