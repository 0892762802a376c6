import { afterAll } from 'vitest';
import { removeTempWorkspaces } from './agent-process.js';

// Runs in every test file (vitest setupFiles): its temporary workspaces go when it ends.
afterAll(removeTempWorkspaces);
