import { FerryError } from '../../errors/index.js';

/** For verbs PRODUCT.md names that this version does not have yet: say so plainly, exit 2. */
export function notImplemented(verb: string, why: string): never {
  throw new FerryError('FERRY_NOT_IMPLEMENTED', `\`ferry ${verb}\` is not implemented yet: ${why}.`);
}
