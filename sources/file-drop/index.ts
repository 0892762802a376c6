import { defineSource } from '../../agent/plugin/define.js';
import { FileDropConfigSchema } from './config.js';
import { FileDropSource } from './file-drop-source.js';
import { fileDropConfigProblems } from './validate-config.js';

export { FileDropConfigSchema, type FileDropConfig } from './config.js';
export { FileDropSource } from './file-drop-source.js';
export type { FileDropCheckpoint } from './checkpoint.js';

/**
 * `type: file-drop`: CSV, JSON lines or fixed-width files dropped in a local
 * folder. See docs/sources/file-drop.md.
 */
export const fileDropSource = defineSource({
  type: 'file-drop',
  summary: 'Flat files (CSV, JSON lines, fixed-width) dropped in a local folder; resumes mid-file, never sends the same content twice.',
  config: FileDropConfigSchema,
  validate: (config) => fileDropConfigProblems(config),
  create: (config, env) => new FileDropSource(config, env),
});
