/**
 * A glob as a regular expression, compiled once: `*` any run of characters,
 * `?` one character, `[abc]`/`[!abc]` a class, `{a,b}` alternatives. Names
 * here are single path segments (file base names, table names), so `*`
 * matches every character, including dots.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let inGroup = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      inGroup++;
      re += '(?:';
    } else if (c === '}' && inGroup > 0) {
      inGroup--;
      re += ')';
    } else if (c === ',' && inGroup > 0) re += '|';
    else re += c.replace(/[.+^$()|\\/]/g, '\\$&').replace(/[}\]]/g, '\\$&');
  }
  if (inGroup > 0) throw new Error(`unclosed "{" in glob "${glob}"`);
  return new RegExp(`^${re}$`);
}
