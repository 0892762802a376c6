import { didYouMean } from '../mapping/did-you-mean.js';

/** ` (did you mean `x`?)` when a candidate is close to `word`, else the empty string. */
export function suggest(word: string, candidates: readonly string[]): string {
  const c = didYouMean(word, candidates);
  return c === undefined ? '' : ` (did you mean \`${c}\`?)`;
}
