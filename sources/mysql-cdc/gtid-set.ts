/**
 * The GTID position of a binlog position, kept beside `file:pos` so an
 * operator (or a later failover to another server) can tell exactly which
 * transactions Ferry has.
 *
 * - MariaDB: the last `domain-server-seq` of every replication domain, comma
 *   separated, the form of `@@gtid_binlog_pos` and `BINLOG_GTID_POS(file,
 *   pos)` (whose order of domains is the server's own: a domain keeps its
 *   place, a new one is added at the end).
 * - MySQL: a GTID set, `uuid:1-5:7-9,uuid2:1-3` (tagged: `uuid:tag:1-3`),
 *   the form of `@@gtid_executed`.
 */
export function addGtid(set: string | undefined, gtid: string): string {
  return isMariadbGtid(gtid) ? addMariadb(set, gtid) : addMysql(set, gtid);
}

function isMariadbGtid(gtid: string): boolean {
  return /^\d+-\d+-\d+$/.test(gtid);
}

function addMariadb(set: string | undefined, gtid: string): string {
  const domain = gtid.slice(0, gtid.indexOf('-'));
  const byDomain = new Map<string, string>();
  for (const entry of split(set)) if (isMariadbGtid(entry)) byDomain.set(entry.slice(0, entry.indexOf('-')), entry);
  byDomain.set(domain, gtid);
  return [...byDomain.values()].join(',');
}

/** `uuid[:tag]` → its intervals, ascending and disjoint. */
type MysqlSet = Map<string, Array<[number, number]>>;

function addMysql(set: string | undefined, gtid: string): string {
  const colon = gtid.lastIndexOf(':');
  const source = gtid.slice(0, colon).toLowerCase();
  const n = Number(gtid.slice(colon + 1));
  if (!Number.isSafeInteger(n) || n <= 0) return set ?? '';
  const parsed = parseMysql(set);
  parsed.set(source, mergeRange(parsed.get(source) ?? [], n, n));
  return [...parsed.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([src, ranges]) => `${src}:${ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(':')}`)
    .join(',');
}

function parseMysql(set: string | undefined): MysqlSet {
  const out: MysqlSet = new Map();
  for (const entry of split(set)) {
    const parts = entry.split(':');
    const uuid = parts.shift()?.toLowerCase();
    if (!uuid) continue;
    // Tags (MySQL 8.3+) are words between the uuid and the intervals; they name a source of their own.
    let source = uuid;
    for (const part of parts) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) {
        source = `${uuid}:${part.toLowerCase()}`;
        continue;
      }
      const lo = Number(m[1]);
      const hi = Number(m[2] ?? m[1]);
      out.set(source, mergeRange(out.get(source) ?? [], lo, hi));
    }
  }
  return out;
}

/** `ranges` with `lo..hi` added, still ascending, disjoint and with adjacent ranges joined. */
function mergeRange(ranges: Array<[number, number]>, lo: number, hi: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let cur: [number, number] = [lo, hi];
  let placed = false;
  for (const r of ranges) {
    if (r[1] + 1 < cur[0]) out.push(r);
    else if (cur[1] + 1 < r[0]) {
      if (!placed) out.push(cur);
      placed = true;
      out.push(r);
    } else cur = [Math.min(r[0], cur[0]), Math.max(r[1], cur[1])];
  }
  if (!placed) out.push(cur);
  return out;
}

function split(set: string | undefined): string[] {
  return (set ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
