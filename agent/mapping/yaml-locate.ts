import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

/** A parsed YAML file that can tell where a value or key is. */
export interface LocatedYaml {
  doc: Document;
  /** Parse errors as line/column messages. */
  errors: { line: number; column: number; message: string }[];
  /** Line and column (1-based) of the node at `path`, or of its key when `key` is true; falls back to the nearest existing parent. */
  locate(path: readonly (string | number)[], key?: boolean): { line: number; column: number };
}

export function parseLocatedYaml(text: string): LocatedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const errors = doc.errors.map((e) => ({ ...pos(e.pos[0]), message: e.message.split('\n')[0]! }));

  const locate = (path: readonly (string | number)[], key = false) => {
    let node: unknown = doc.contents;
    let best: { line: number; column: number } = { line: 1, column: 1 };
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === String(seg));
        if (!pair) return best;
        const keyNode = pair.key as Node | null;
        if (keyNode?.range) best = pos(keyNode.range[0]);
        if (key && i === path.length - 1) return best;
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
      } else return best;
      const range = (node as Node | null)?.range;
      if (range) best = pos(range[0]);
    }
    return best;
  };
  return { doc, errors, locate };
}
