import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Telemetry } from '../telemetry/metrics.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
}

/**
 * The admin HTTP server: `/healthz` (the process is alive), `/readyz` (Redis
 * is connected and every source and sink is up: 503 otherwise, with which
 * one is not) and `/metrics` (Prometheus). Loopback by default; with a token
 * every route needs `Authorization: Bearer TOKEN`.
 */
export async function startAdminServer(opts: { listen: string; token?: string; telemetry: Telemetry; readiness: () => Readiness; logger: Logger }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  if (opts.token) {
    const expected = Buffer.from(`Bearer ${opts.token}`);
    app.addHook('onRequest', async (req, reply) => {
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong bearer token' });
      }
    });
  }
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = opts.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.telemetry.registry.metrics();
    return reply.type(opts.telemetry.registry.contentType).send(body);
  });
  const { host, port } = parseListen(opts.listen);
  await app.listen({ host, port });
  opts.logger.info({ listen: opts.listen }, 'admin server listening');
  return app;
}

function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(listen.slice(i + 1)) };
}
