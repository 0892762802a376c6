import iconv from 'iconv-lite';
import { suggest } from '../../agent/config/suggest.js';
import { globToRegExp } from '../../agent/mapping/glob.js';
import type { PluginConfigProblem } from '../../agent/plugin/define.js';
import type { FileDropConfig } from './config.js';
import { knownEncoding } from './decode.js';

const COMMON_ENCODINGS = 'utf-8, windows-1252, iso-8859-1, iso-8859-15, cp850, utf-16le';
const ALL_ENCODINGS = 'https://github.com/ashtuchkin/iconv-lite/wiki/Supported-Encodings';

/**
 * What the schema cannot say about a file-drop config: the encoding must be
 * one iconv-lite knows and the pattern a glob that compiles. No I/O: the
 * loader runs it for `ferry check --offline` too, and the constructor for
 * whoever creates the source without the loader.
 */
export function fileDropConfigProblems(config: FileDropConfig): PluginConfigProblem[] {
  const problems: PluginConfigProblem[] = [];
  const encoding = config.format.encoding;
  if (encoding !== undefined && !knownEncoding(encoding)) {
    problems.push({
      path: ['format', 'encoding'],
      message: `unknown encoding "${encoding}"${suggest(normalise(encoding), encodingNames())}`,
      fix: `use a name iconv-lite knows, e.g. ${COMMON_ENCODINGS} (every one: ${ALL_ENCODINGS})`,
    });
  }
  if (config.pattern !== undefined) {
    try {
      globToRegExp(config.pattern);
    } catch (err) {
      problems.push({ path: ['pattern'], message: (err as Error).message, fix: 'close every "{" in the glob, e.g. "*.{csv,txt}"' });
    }
  }
  return problems;
}

/** iconv-lite's own spelling of a name (`Windows-1252` → `windows1252`), which is also what it accepts. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/:\d{4}$|[^0-9a-z]/g, '');
}

let names: string[] | undefined;

/** Every name iconv-lite accepts, bare code page numbers and internal entries aside. */
function encodingNames(): string[] {
  if (!names) {
    // iconv-lite fills its table on first use; the lookup above has already made it.
    const table = (iconv as unknown as { encodings: Record<string, unknown> | null }).encodings ?? {};
    names = Object.keys(table).filter((n) => !n.startsWith('_') && !/^\d+$/.test(n));
  }
  return names;
}
